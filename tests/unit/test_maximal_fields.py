"""Every field at the longest length its schema allows: the chain still runs and alerts alike.

Ids, handles and links come from outside and may be as long as the schemas let them be; the
ids derived from them once outgrew the event id's 100 characters and stopped a service on
every retry. This runs the drill through the functions the services run (``replay``: target
matching, ``Scorer``, the detector, the alert adapter), with every mention id, author,
link and target id stretched to its maximum, and checks that the same alerts come out, that
each one survives the wire (encode, decode) and renders for the crisis team.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from stormwatch_alerting.app import decode_alert
from stormwatch_alerting.delivery.render import render_email, render_log_line
from stormwatch_shared.codec import encode
from stormwatch_shared.events import MAX_EVENT_ID_CHARS

import stormwatch_cli.replay as replay_mod
from stormwatch_cli.report import AlertReport
from tests.conftest import DRILL


def _stretch(value: str, length: int, fill: str = "x") -> str:
    return value + "-" + fill * (length - len(value) - 1)


def _stretched_drill(out: Path) -> dict[str, str]:
    shutil.copytree(DRILL, out)
    targets = orjson.loads((DRILL / "targets.json").read_bytes())
    renamed = {t["id"]: _stretch(t["id"], 100, "z") for t in targets}
    for t in targets:
        t["id"] = renamed[t["id"]]
    (out / "targets.json").write_bytes(orjson.dumps(targets))
    lines = []
    for raw in (DRILL / "mentions.jsonl").read_bytes().splitlines():
        m = orjson.loads(raw)
        m["id"] = _stretch(m["id"], 600)
        if m.get("in_reply_to"):
            m["in_reply_to"] = _stretch(m["in_reply_to"], 600)
        m["author"]["id"] = _stretch(m["author"]["id"], 200)
        m["author"]["handle"] = _stretch(m["author"]["handle"], 200)
        m["url"] = _stretch("https://example.invalid/" + m["id"][:20], 2000)
        lines.append(orjson.dumps(m))
    (out / "mentions.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return renamed


class _Keeping(AlertReport):
    events: ClassVar[list[Any]] = []

    def add(self, event: Any) -> None:
        _Keeping.events.append(event)
        super().add(event)


def test_maximal_ids_and_links_change_nothing_but_the_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed = _stretched_drill(tmp_path / "drill")
    expected = AlertReport()
    expected._alerts = {a["alert_id"]: a for a in replay_mod.replay(DRILL)["alerts"]}
    monkeypatch.setattr(replay_mod, "AlertReport", _Keeping)
    _Keeping.events = []
    got = replay_mod.replay(tmp_path / "drill")
    assert got["counts"]["malformed"] == 0 and got["problems"] == []
    report = AlertReport()
    report._alerts = {a["alert_id"]: a for a in got["alerts"]}
    back = {v: k for k, v in renamed.items()}
    mapped = [{**a, "target": back[a["target"]]} for a in report.comparable()]
    assert mapped == expected.comparable() and mapped, "the same alerts, at the same times"
    assert _Keeping.events
    for event in _Keeping.events:
        assert len(event.event_id) <= MAX_EVENT_ID_CHARS
        assert decode_alert(encode(event)) == event
        mail = render_email(event, "https://stormwatch.example/room")
        assert mail.subject and mail.body
        assert render_log_line(event)
