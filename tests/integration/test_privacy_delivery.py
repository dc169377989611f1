"""Consent, retention and erasure in the delivery stage: the real pipeline (SMTP sink, local
HTTP fakes for SMS/push/chat), its SQLite store, a fake clock, and ``forget`` on the store."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from stormwatch_alerting.delivery.store import Store
from stormwatch_shared.events import CrisisAlertRaised, CrisisAlertResolved, Evidence

from stormwatch_cli.forget import Request, forget
from tests.integration.test_delivery_pipeline import (
    NOON,
    Rig,
    emails_to,
    raised,
    routing,
    run,
    wait_for,
)
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.privacy

TEXT = "Meine Mutter lag drei Tage auf Station 4 ohne Schmerzmittel"


def _alert(target: str = "hospital", kind: str = "organisation") -> CrisisAlertRaised:
    base = raised(target=target, kind=kind)
    posts = (
        {
            "mention_id": "x:77",
            "url": "https://x.com/erika_m/status/77",
            "text": TEXT,
            "author": "@erika_m",
        },
        {
            "mention_id": "x:78",
            "url": "https://x.com/other/status/78",
            "text": "Andere Meinung",
            "author": "@other",
        },
    )
    return base.model_copy(update={"evidence": Evidence(observed=40, top_posts=posts)})


def _dump(db: Path) -> str:
    """The whole database as text, to search for what must be gone."""
    con = sqlite3.connect(db)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


@pytest.mark.parametrize("consent", [True, False])
def test_an_ambassador_without_consent_gets_no_heads_up(
    consent: bool, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    doc = routing()
    doc["ambassadors"][0]["consent"] = consent

    async def check(rig: Rig) -> None:
        await rig.delivery.handle(raised(target="paula", kind="ambassador"))
        await rig.delivery.drain()
        await wait_for(lambda: len(emails_to(rig.smtp, "anna@")) == 1)()  # comms is paged
        if consent:
            await wait_for(lambda: len(emails_to(rig.smtp, "paula@")) == 1)()
        else:
            await asyncio.sleep(0.3)
            assert emails_to(rig.smtp, "paula@") == []
            assert [r["detail"] for r in rig.audit(action="heads_up_skipped")] == ["no consent"]
        to_paula = [m for m in rig.sms() if m.get("To", m.get("to")) == "+4915100000010"]
        assert bool(rig.audit(recipient="paula")) is consent
        assert bool(to_paula) is consent

    run(check, smtp_sink, tmp_path, doc=doc)


def test_forget_ambassador_erases_their_alerts_and_logs_without_the_id(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async def check(rig: Rig) -> None:
        await rig.delivery.handle(raised(target="paula", kind="ambassador"))
        await rig.delivery.handle(raised(target="hospital"))
        await rig.delivery.drain()

    run(check, smtp_sink, tmp_path)
    db = tmp_path / "state.sqlite3"
    assert "paula-1" in _dump(db)
    out = forget(Request("ambassador", "paula"), kafka=None, state_db=db, now=NOON)
    assert out.counts["store_alerts"] == 1 and out.counts["store_audit"] > 0
    store = Store(db)
    try:
        assert [g.target_id for g in store.all_groups()] == ["hospital"]
        assert store.event("paula-1") is None and store.audit_rows("paula-1") == []
        [entry] = store.erasures()
        assert entry["kind"] == "ambassador" and entry["counts"]["store_alerts"] == 1
    finally:
        store.close()
    assert "paula-1" not in _dump(db)


def test_forget_author_strips_their_quoted_posts_and_keeps_the_others(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async def check(rig: Rig) -> None:
        await rig.delivery.handle(_alert())
        await rig.delivery.drain()

    run(check, smtp_sink, tmp_path)
    db = tmp_path / "state.sqlite3"
    assert TEXT in _dump(db) and "erika_m" in _dump(db)
    out = forget(Request("author", "@Erika_M"), kafka=None, state_db=db, now=NOON)
    assert out.counts["store_posts"] == 1
    dump = _dump(db)
    assert TEXT not in dump and "erika_m" not in dump.casefold()  # not even in the log
    assert "Andere Meinung" in dump
    store = Store(db)
    try:
        [entry] = store.erasures()
        assert entry["kind"] == "author" and len(entry["subject_digest"]) == 64
    finally:
        store.close()


def test_retention_purges_texts_after_30_days_and_alerts_after_a_year(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async def check(rig: Rig) -> None:
        alert = _alert()
        await rig.delivery.handle(alert)
        rig.clock.advance(hours=2)
        resolved = CrisisAlertResolved(
            **alert.model_dump(exclude={"type", "event_id", "occurred_at"}),
            occurred_at=NOON + timedelta(hours=2),
        )
        await rig.delivery.handle(resolved)
        await rig.delivery.drain()
        store = rig.delivery.store
        n_audit = len(store.audit_rows())
        assert store.purge(NOON + timedelta(days=29)) == {"alerts": 0, "texts": 0, "audit": 0}
        assert TEXT in str(store.event(alert.alert_id))
        assert store.purge_due(NOON + timedelta(days=29, hours=12)) is False
        counts = store.purge(NOON + timedelta(days=31))
        assert counts == {"alerts": 0, "texts": 2, "audit": 0}
        event = store.event(alert.alert_id)
        assert event is not None and event["evidence"]["top_posts"] == []
        assert event["evidence"]["observed"] == 40  # the alert and its figures stay
        assert len(store.audit_rows()) == n_audit
        assert store.purge_due(NOON + timedelta(days=32)) is True
        counts = store.purge(NOON + timedelta(days=366))
        assert counts["alerts"] == 1 and counts["audit"] == n_audit
        assert store.group(alert.alert_id) is None and store.event(alert.alert_id) is None

    run(check, smtp_sink, tmp_path)
