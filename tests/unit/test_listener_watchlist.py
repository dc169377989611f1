"""Watch list: validation names the entry, consent decides, drill import, X rules, matching
of followed accounts, settings, the seen-set store."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from stormwatch_listener.cli import register
from stormwatch_listener.domain.matching import WatchMatcher, received_events
from stormwatch_listener.domain.watchlist import (
    WatchListError,
    follow_accounts,
    monitored,
    parse_watch_list,
    to_targets,
    x_rules,
)
from stormwatch_listener.settings import ListenerSettings
from stormwatch_listener.state import StateStore
from stormwatch_listener.watchlist import load, read_watch_list
from stormwatch_shared.events import Author, Mention
from stormwatch_shared.targets import TargetMatcher, load_targets

from tests.conftest import DRILL

pytestmark = pytest.mark.sources

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 3, 11)
BASE: dict[str, Any] = {
    "organisation": {
        "id": "hospital",
        "name": "Klinikum Nordstadt",
        "hashtags": ["#KlinikumNordstadt"],
        "handles": {"x": ["@KlinikumNord"]},
    },
    "ambassadors": [
        {
            "id": "paula",
            "name": "Paula",
            "handles": {"x": ["pflege_paula"], "bluesky": ["did:plc:paula"]},
            "consent": {"recorded": "2026-01-15"},
        },
        {"id": "jonas", "name": "Jonas", "handles": {"x": ["dr_jonas_k"]}},
        {
            "id": "mia",
            "name": "Mia",
            "handles": {"x": ["hebamme_mia"]},
            "consent": {"recorded": "2026-01-01", "withdrawn": "2026-03-01"},
        },
        {
            "id": "lena",
            "name": "Lena",
            "handles": {"x": ["lena"]},
            "consent": {"recorded": "2026-04-01"},
        },
    ],
}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"ambassadors": [{"id": "paula", "consent": {"recorded": "15.01.2026"}}]},
            "ambassadors[0] (id 'paula').consent.recorded",
        ),
        ({"ambassadors": [{"id": "x y"}]}, "ambassadors[0] (id 'x y').id"),
        (
            {"ambassadors": [{"id": "a", "handle": {"x": ["a"]}}]},
            "ambassadors[0] (id 'a').handle: Extra inputs",
        ),
        ({"ambassadors": [{"id": "hospital", "name": "Dup"}]}, "duplicate ids ['hospital']"),
        ({"organisation": {"id": "h", "hashtags": ["Klinik Nord"]}}, "only letters"),
        ({"organisation": {"id": "h"}}, "'h' has nothing to match"),
    ],
)
def test_errors_name_the_entry(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(WatchListError) as err:
        parse_watch_list({**BASE, **patch}, "watch.yaml")
    assert message in str(err.value) and str(err.value).startswith("watch.yaml: ")


def test_consent_decides_who_is_monitored_and_targets_follow() -> None:
    watch = parse_watch_list(BASE)
    entries, skipped = monitored(watch, TODAY)
    assert [e.id for e in entries] == ["hospital", "paula"]
    assert [s.split(":")[0] for s in skipped] == ["jonas", "mia", "lena"]
    assert "no consent" in skipped[0] and "withdrawn" in skipped[1] and "only from" in skipped[2]
    targets = to_targets(entries)
    assert targets[0].keywords == ("Klinikum Nordstadt", "KlinikumNordstadt")
    assert targets[0].handles == ("@KlinikumNord",)
    assert targets[1].handles == ("@pflege_paula",)  # a DID is not a text handle
    rules = x_rules(entries)
    assert rules == [
        (
            '("Klinikum Nordstadt" OR #KlinikumNordstadt OR from:KlinikumNord OR to:KlinikumNord '
            "OR @KlinikumNord)",
            "hospital",
        ),
        ("(from:pflege_paula OR to:pflege_paula OR @pflege_paula)", "paula"),
    ]


def test_x_rule_over_1024_characters_is_refused_with_the_entry() -> None:
    data = {
        "organisation": {
            "id": "hospital",
            "name": "K",
            "keywords": [f"Stichwort{i}" for i in range(120)],
        }
    }
    entries, _ = monitored(parse_watch_list(data), TODAY)
    with pytest.raises(WatchListError, match=r"'hospital'.*1024"):
        x_rules(entries)


def mention(
    text: str,
    *,
    source: str = "bluesky",
    author: str = "did:plc:other",
    reply_to: str | None = None,
) -> Mention:
    return Mention(
        id=f"{source}:1",
        source=source,
        created_at=datetime(2026, 3, 11, tzinfo=UTC),
        text=text,
        author=Author(id=author, handle=author),
        in_reply_to=reply_to,
    )


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        (mention("Klinikum Nordstadt"), ["hospital"]),
        (mention("nichts"), []),
        (mention("mein Dienst", author="did:plc:paula"), ["paula"]),
        (mention("du lügst", reply_to="bsky:at://did:plc:paula/app.bsky.feed.post/1"), ["paula"]),
        (mention("du lügst", reply_to="bsky:at://did:plc:else/app.bsky.feed.post/1"), []),
        (mention("hi", source="x", author="@PFLEGE_PAULA"), ["paula"]),
        (
            mention(
                "hi",
                source="mastodon",
                author="@x@y",
                reply_to="masto:https://social.example/users/klinik/statuses/5",
            ),
            [],
        ),
    ],
)
def test_followed_accounts_and_replies_to_them(m: Mention, expected: list[str]) -> None:
    entries, _ = monitored(parse_watch_list(BASE), TODAY)
    matcher = WatchMatcher(to_targets(entries), follow_accounts(entries))
    assert matcher.match_mention(m) == expected
    assert [e.target_id for e in received_events(m, matcher)] == expected


def test_drill_targets_import_and_replay_matching_unchanged(tmp_path: Path) -> None:
    targets = load_targets(DRILL / "targets.json")
    watch = read_watch_list(DRILL / "targets.json")
    assert [o.id for o in watch.organisations] == ["hospital"]
    assert all(a.consent is None for a in watch.ambassadors)
    # Loaded directly, the drill's ambassadors have no consent: only the hospital is live.
    loaded = load(DRILL / "targets.json", TODAY)
    assert [t.id for t in loaded.targets] == ["hospital"] and len(loaded.skipped) == 3
    # Text matching for the organisation is the drill's: same keywords, same handles.
    assert set(loaded.targets[0].keywords) == set(targets[0].keywords) | {targets[0].name}
    assert loaded.targets[0].handles == targets[0].handles
    m = mention("Klinikum Nordstadt @pflege_paula", source="x")
    assert received_events(m, TargetMatcher(targets)) == received_events(m, WatchMatcher(targets))


def test_cli_import_writes_yaml_that_loads_back(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "watch.yaml"
    args = parser.parse_args(["watchlist", "import", str(DRILL / "targets.json"), str(out)])
    assert args.func(args) == 0
    again = read_watch_list(out)
    assert again == read_watch_list(DRILL / "targets.json")
    assert args.func(args) == 2  # refuses to overwrite without --force
    example = REPO / "examples" / "watchlist.example.yaml"
    check = parser.parse_args(["watchlist", "check", str(example)])
    assert check.func(check) == 0


def test_loading_logs_each_ambassador_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="stormwatch.listener.watchlist"):
        loaded = load(REPO / "examples" / "watchlist.example.yaml", TODAY)
    assert [t.id for t in loaded.targets] == ["hospital", "paula", "jonas"]
    assert any("mia" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LISTENER_SOURCE": "x"}, "LISTENER_WATCHLIST"),
        ({"LISTENER_SOURCE": "x", "LISTENER_WATCHLIST": "{wl}"}, "LISTENER_X_BEARER_TOKEN"),
        (
            {
                "LISTENER_SOURCE": "mastodon",
                "LISTENER_WATCHLIST": "{wl}",
                "LISTENER_MASTODON_BASE_URL": "https://m.example",
            },
            "LISTENER_MASTODON_ACCESS_TOKEN",
        ),
        (
            {
                "LISTENER_SOURCE": "bluesky",
                "LISTENER_WATCHLIST": "{wl}",
                "LISTENER_BLUESKY_JETSTREAM_URL": "https://j",
            },
            "ws://",
        ),
        (
            {
                "LISTENER_SOURCE": "rss",
                "LISTENER_WATCHLIST": "{wl}",
                "LISTENER_RSS_INTERVAL_S": "5",
            },
            "greater than or equal to 60",
        ),
    ],
)
def test_settings_refuse_incomplete_live_configs(
    env: dict[str, str], variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wl = str(REPO / "examples" / "watchlist.example.yaml")
    for k, v in env.items():
        monkeypatch.setenv(k, v.format(wl=wl))
    with pytest.raises(ValidationError, match=variable):
        ListenerSettings()


def test_settings_keep_secrets_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTENER_SOURCE", "x")
    monkeypatch.setenv("LISTENER_WATCHLIST", str(REPO / "examples" / "watchlist.example.yaml"))
    monkeypatch.setenv("LISTENER_X_BEARER_TOKEN", "s3cr3t")
    s = ListenerSettings()
    assert "s3cr3t" not in repr(s) and s.x_bearer_token.get_secret_value() == "s3cr3t"


def test_seen_set_expires_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    store.mark_seen(["x:1", "x:2"], expires=1000.0)
    store.save_cursor("x", "2")
    store.save_budget("x", "2026-03", 7)
    store.close()
    store = StateStore(path)
    assert store.seen(["x:1", "x:2", "x:3"], now=999.0) == {"x:1", "x:2"}
    assert store.seen(["x:1"], now=1000.0) == set()
    assert store.purge(now=1000.0) == 2
    assert store.load_cursor("x") == "2" and store.load_cursor("rss") is None
    assert store.budget_used("x", "2026-03") == 7 and store.budget_used("x", "2026-04") == 0
