"""Routed delivery against local servers speaking the real wire protocols.

A real aiosmtpd receives the emails; an aiohttp server plays Twilio's Messages API (through
the official ``twilio`` package), a seven.io-style SMS gateway, ntfy, Mattermost and Teams
webhooks, Alertmanager and Grafana. Time is a fake clock, so escalation timelines run in
milliseconds; sleeps between retries are recorded instead of slept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from stormwatch_alerting.delivery.service import Delivery
from stormwatch_alerting.delivery.settings import DeliverySettings
from stormwatch_alerting.domain.ack import AckTokenError, twilio_signature
from stormwatch_alerting.domain.routing import parse_routing
from stormwatch_alerting.settings import AlertingSettings
from stormwatch_shared.events import (
    CrisisAlertEscalated,
    CrisisAlertRaised,
    CrisisAlertResolved,
    Evidence,
)

from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.delivery

NOON = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
NIGHT = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # midnight in Berlin
EVIL = '<script>window.__pwned=1</script><img src=x onerror="alert(1)"> Station 4 & Notaufnahme'
SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "twilio-test-token"


def routing(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "timezone": "Europe/Berlin",
        "people": [
            {
                "id": "anna",
                "name": "Anna Schmidt",
                "email": "anna@klinikum.example",
                "phone": "+4915100000001",
                "language": "de",
                "ntfy_topic": "sw-anna",
            },
            {
                "id": "ben",
                "name": "Ben Okafor",
                "email": "ben@klinikum.example",
                "phone": "+4915100000002",
                "language": "en",
            },
            {
                "id": "clara",
                "name": "Clara Wolff",
                "email": "clara@klinikum.example",
                "phone": "+4915100000003",
            },
            {
                "id": "paula",
                "name": "Paula Brandt",
                "email": "paula@klinikum.example",
                "phone": "+4915100000010",
                "language": "en",
            },
        ],
        "roles": {"deputy": "ben", "head_of_communications": "clara"},
        "rotations": [{"id": "comms", "members": ["anna"], "start": "2026-01-05T08:00:00+01:00"}],
        "chat": [
            {"id": "mm", "kind": "mattermost", "url": "{base}/hooks/mm"},
            {"id": "teams", "kind": "teams", "url": "{base}/hooks/teams"},
        ],
        "digest": {"interval_minutes": 60, "recipients": ["role:head_of_communications"]},
        "routes": [
            {
                "name": "watch",
                "levels": ["watch"],
                "needs_ack": False,
                "steps": [{"broadcast": ["mm", "digest"]}],
            },
            {
                "name": "warning",
                "levels": ["warning"],
                "ack_timeout_minutes": 15,
                "steps": [
                    {
                        "recipients": ["oncall:comms"],
                        "channels": ["email", "push", "sms"],
                        "broadcast": ["mm"],
                    },
                    {"recipients": ["role:deputy"], "channels": ["sms"]},
                    {"recipients": ["role:head_of_communications"], "channels": ["sms"]},
                ],
            },
            {
                "name": "critical",
                "levels": ["critical"],
                "ack_timeout_minutes": 5,
                "steps": [
                    {
                        "recipients": [
                            "oncall:comms",
                            "role:deputy",
                            "role:head_of_communications",
                        ],
                        "channels": ["sms"],
                        "broadcast": ["teams"],
                    },
                ],
            },
        ],
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "ambassadors": [
            {
                "target_id": "paula",
                "person": "paula",
                "consent": True,
                "guideline_url": "https://intranet.klinikum.example/leitlinie",
                "contact": "oncall:comms",
                "channels": ["email", "sms"],
            }
        ],
        "sms_cap": {"per_hour": 30, "per_day": 200},
        "sms_bundle_minutes": 10,
    }
    doc.update(overrides)
    return doc


@dataclass
class Fakes:
    """One local server for every HTTP provider; records what it receives."""

    requests: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    twilio_failures: int = 0
    twilio_status: int = 503
    twilio_retry_after: str | None = None
    base: str = ""
    runner: web.AppRunner | None = None

    def of(self, path_part: str) -> list[Any]:
        return [body for path, body, _ in self.requests if path_part in path]

    async def start(self) -> Fakes:
        app = web.Application()

        async def twilio(request: web.Request) -> web.Response:
            form = dict(await request.post())
            self.requests.append((request.path, form, dict(request.headers)))
            if self.twilio_failures:
                self.twilio_failures -= 1
                headers = (
                    {"Retry-After": self.twilio_retry_after} if self.twilio_retry_after else {}
                )
                return web.json_response(
                    {"code": 20500, "message": "Service unavailable", "status": self.twilio_status},
                    status=self.twilio_status,
                    headers=headers,
                )
            n = len(self.of("/Messages.json"))
            return web.json_response(
                {
                    "sid": f"SM{n:032d}",
                    "status": "queued",
                    "to": form["To"],
                    "from": form["From"],
                    "body": form["Body"],
                    "account_sid": request.match_info["sid"],
                },
                status=201,
            )

        async def gateway(request: web.Request) -> web.Response:
            self.requests.append((request.path, dict(await request.post()), dict(request.headers)))
            return web.json_response({"success": "100", "messages": [{"id": "7700"}]})

        async def json_sink(request: web.Request) -> web.Response:
            self.requests.append((request.path, await request.json(), dict(request.headers)))
            return web.json_response({"id": "x1"})

        app.add_routes(
            [
                web.post("/2010-04-01/Accounts/{sid}/Messages.json", twilio),
                web.post("/gateway/sms", gateway),
                web.post("/ntfy", json_sink),
                web.post("/hooks/{name}", json_sink),
                web.post("/am/api/v2/alerts", json_sink),
                web.post("/grafana/api/annotations", json_sink),
            ]
        )
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


@dataclass
class Rig:
    delivery: Delivery
    fakes: Fakes
    clock: Clock
    sleeps: list[float]
    smtp: SmtpSink

    def sms(self) -> list[dict[str, str]]:
        return self.fakes.of("/Messages.json") + self.fakes.of("/gateway/sms")

    def sent_sms(self) -> list[dict[str, str]]:
        """Twilio requests that succeeded plus gateway ones (Twilio failures are recorded too)."""
        rows = self.delivery.store.audit_rows()
        return [r for r in rows if r["channel"] == "sms" and r["outcome"] == "sent"]

    def audit(self, **match: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in self.delivery.store.audit_rows()
            if all(r.get(k) == v for k, v in match.items())
        ]


def run(
    test: Callable[[Rig], Awaitable[None]],
    smtp: SmtpSink,
    tmp_path: Path,
    *,
    at: datetime = NOON,
    doc: dict[str, Any] | None = None,
    smtp_port: int | None = None,
    **settings: Any,
) -> None:
    async def main() -> None:
        fakes = await Fakes().start()
        clock, sleeps = Clock(at), []

        async def fake_sleep(seconds: float) -> None:
            sleeps.append(seconds)

        cfg_doc = _with_base(doc if doc is not None else routing(), fakes.base)
        ds = DeliverySettings(
            state_db=settings.pop("state_db", tmp_path / "state.sqlite3"),
            ack_secret="s" * 32,
            public_url="https://krisenraum.example",
            web_enabled=settings.pop("web_enabled", False),
            web_port=0,
            twilio_account_sid=SID,
            twilio_auth_token=TOKEN,
            twilio_from="+4930000000",
            twilio_base_url=fakes.base,
            http_sms_url=f"{fakes.base}/gateway/sms",
            http_sms_api_key="gw-key",
            ntfy_url=f"{fakes.base}/ntfy",
            alertmanager_url=f"{fakes.base}/am",
            grafana_url=f"{fakes.base}/grafana",
            grafana_token="g-token",
            retry_base_s=0.01,
            tick_s=300,
            **settings,
        )
        alerting = AlertingSettings(
            smtp_port=smtp_port or smtp.port,
            smtp_timeout_s=0.5,
            email_from="stormwatch@klinikum.example",
        )
        delivery = Delivery(
            alerting,
            delivery_settings=ds,
            routing=parse_routing(cfg_doc),
            clock=clock,
            sleep=fake_sleep,
            rand=lambda: 0.5,
        )
        await delivery.start()
        try:
            await test(Rig(delivery, fakes, clock, sleeps, smtp))
        finally:
            await delivery.stop()
            await fakes.stop()

    asyncio.run(main())


def _with_base(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base}", base)
    if isinstance(value, list):
        return [_with_base(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _with_base(v, base) for k, v in value.items()}
    return value


def evidence() -> Evidence:
    return Evidence(
        observed=48,
        expected=6.2,
        negative_share=0.71,
        negative_share_usual=0.2,
        distinct_authors=35,
        new_authors=30,
        reach=120_000,
        topics=("hygiene",),
        top_posts=(
            {"text": EVIL, "url": "https://social.example/p/1"},
            {"text": "Zweiter Beitrag", "url": "javascript:alert(1)"},
        ),
    )


def raised(
    level: str = "warning",
    target: str = "hospital",
    kind: str = "organisation",
    drill: bool = False,
    alert_id: str | None = None,
    at: datetime = NOON,
) -> CrisisAlertRaised:
    return CrisisAlertRaised(
        occurred_at=at,
        alert_id=alert_id or f"{target}-1",
        target_id=target,
        target_name="Klinikum Nordstadt" if target == "hospital" else target.title(),
        target_kind=kind,
        level=level,
        evidence=evidence(),
        drill=drill,  # type: ignore[arg-type]
    )


def emails_to(smtp: SmtpSink, addr: str) -> list[Any]:
    with smtp.lock:
        return [m for m in smtp.messages if addr in str(m["To"])]


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> Callable[[], Awaitable[None]]:
    async def waiter() -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.02)

    return waiter


# --------------------------------------------------------------------------- channels


def test_warning_pages_on_call_by_email_push_sms_and_chat(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async def check(rig: Rig) -> None:
        await rig.delivery.handle(raised())
        await rig.delivery.drain()
        await wait_for(lambda: len(emails_to(rig.smtp, "anna@")) == 1)()
        mail = emails_to(rig.smtp, "anna@")[0]
        assert "Krisenwarnung Warnung: Klinikum Nordstadt" in str(mail["Subject"])
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert "Warum / why" in text and "https://krisenraum.example/ack/" in text
        assert "&lt;script&gt;" in html and "<script>" not in html and "<img" not in html
        assert "javascript:" not in html  # only http(s) links survive
        [sms] = rig.fakes.of("/Messages.json")
        group = rig.delivery.store.group("hospital-1")
        assert group is not None and f"OK {group.ack_code}" in sms["Body"]
        assert "script" not in sms["Body"] and "Notaufnahme" not in sms["Body"]  # no post text
        assert sms["To"] == "+4915100000001"
        assert sms["StatusCallback"] == "https://krisenraum.example/webhooks/twilio/status"
        [push] = rig.fakes.of("/ntfy")
        assert push["topic"] == "sw-anna" and push["priority"] == 4
        assert "Notaufnahme" not in push["message"]
        ack = next(a for a in push["actions"] if a["action"] == "http")
        assert ack["method"] == "POST" and "/ack/" in ack["url"]
        [chat] = rig.fakes.of("/hooks/mm")
        assert "Klinikum Nordstadt" in chat["text"] and "Notaufnahme" not in chat["text"]
        [am] = rig.fakes.of("/api/v2/alerts")
        assert am[0]["labels"]["severity"] == "warning" and am[0]["endsAt"] > am[0]["startsAt"]
        [ann] = rig.fakes.of("/api/annotations")
        assert "stormwatch" in ann["tags"]
        sent = rig.audit(action="notify", outcome="sent")
        assert {(r["channel"], r["recipient"]) for r in sent} >= {
            ("email", "anna"),
            ("sms", "anna"),
            ("push", "anna"),
            ("chat", "mm"),
        }
        sms_row = next(r for r in sent if r["channel"] == "sms")
        assert sms_row["provider"] == "twilio" and sms_row["provider_id"].startswith("SM")

    run(check, smtp_sink, tmp_path)


def test_same_event_twice_and_after_restart_sends_once(smtp_sink: SmtpSink, tmp_path: Path) -> None:
    alert = raised()

    async def first(rig: Rig) -> None:
        await rig.delivery.handle(alert)
        await rig.delivery.handle(alert)  # redelivered by Kafka
        again = alert.model_copy(update={"event_id": "another-event-same-alert"})
        assert (await rig.delivery.handle(again)) == {"event": "unchanged"}
        await rig.delivery.drain()

    async def after_restart(rig: Rig) -> None:
        assert (await rig.delivery.handle(alert)) == {"event": "duplicate"}
        await rig.delivery.drain()
        assert rig.fakes.of("/Messages.json") == []

    run(first, smtp_sink, tmp_path)
    run(after_restart, smtp_sink, tmp_path)
    time.sleep(0.2)
    assert len(emails_to(smtp_sink, "anna@")) == 1


def test_escalation_timeline_and_single_use_ack_link(smtp_sink: SmtpSink, tmp_path: Path) -> None:
    async def check(rig: Rig) -> None:
        d = rig.delivery
        await d.handle(raised())
        await d.drain()
        assert [s["To"] for s in rig.sms()] == ["+4915100000001"]
        rig.clock.advance(minutes=14)
        await d.tick()
        await d.drain()
        assert len(rig.sms()) == 1
        rig.clock.advance(minutes=1)  # 15 min unacknowledged: the deputy
        await d.tick()
        await d.drain()
        assert [s["To"] for s in rig.sms()][-1] == "+4915100000002"
        link = d.ack_url("hospital-1", "ben")
        token = link.rsplit("/", 1)[1]
        rig.clock.advance(minutes=2)
        group = d.ack_with_token(token)
        assert group.status == "acknowledged" and group.acked_by == "ben"
        with pytest.raises(AckTokenError, match="already used"):
            d.ack_with_token(token)
        rig.clock.advance(minutes=60)
        await d.tick()
        await d.drain()
        assert len(rig.sms()) == 2  # head of communications never paged
        acks = rig.audit(action="acknowledged")
        assert acks[0]["actor"] == "ben" and acks[0]["detail"] == "after 1020s"
        expired = d.ack_url("hospital-1", "anna").rsplit("/", 1)[1]
        rig.clock.advance(minutes=241)
        with pytest.raises(AckTokenError, match="expired"):
            d.ack_with_token(expired)

    run(check, smtp_sink, tmp_path)


def test_escalation_survives_a_restart(smtp_sink: SmtpSink, tmp_path: Path) -> None:
    async def before(rig: Rig) -> None:
        await rig.delivery.handle(raised())
        await rig.delivery.drain()

    async def after(rig: Rig) -> None:  # new process, clock 16 minutes later
        await rig.delivery.tick()
        await rig.delivery.drain()
        assert [s["To"] for s in rig.sms()] == ["+4915100000002"]  # deputy; anna not re-paged

    run(before, smtp_sink, tmp_path)
    run(after, smtp_sink, tmp_path, at=NOON + timedelta(minutes=16))


def test_sms_provider_outage_retries_with_backoff_then_fails_over(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async def check(rig: Rig) -> None:
        rig.fakes.twilio_failures = 100  # Twilio is down
        rig.fakes.twilio_retry_after = "3"
        await rig.delivery.handle(raised(level="critical"))
        await rig.delivery.drain()
        gateway = rig.fakes.of("/gateway/sms")
        assert len(gateway) == 3  # on-call, deputy, head: all through the second provider
        assert {g["to"] for g in gateway} == {"+4915100000001", "+4915100000002", "+4915100000003"}
        assert "Notaufnahme" not in gateway[0]["text"]
        first = [r for r in rig.audit(channel="sms") if r["recipient"] == "anna"]
        assert [r["outcome"] for r in first] == [
            "retry",
            "retry",
            "retry",
            "failed",
            "failover",
            "sent",
        ]
        assert first[-1]["provider"] == "http" and first[-1]["provider_id"] == "7700"
        assert min(rig.sleeps) >= 3.0  # Retry-After honoured
        # the next SMS goes straight to the healthy provider first
        rig.fakes.twilio_failures = 0
        n = len(rig.fakes.of("/Messages.json"))
        await rig.delivery.handle(raised(level="critical", target="jonas", alert_id="jonas-1"))
        await rig.delivery.drain()
        assert len(rig.fakes.of("/Messages.json")) == n

    run(check, smtp_sink, tmp_path, doc=routing(sms_bundle_minutes=0))


def test_non_recoverable_errors_are_not_retried(smtp_sink: SmtpSink, tmp_path: Path) -> None:
    async def check(rig: Rig) -> None:
        rig.fakes.twilio_failures = 1
        rig.fakes.twilio_status = 400
        await rig.delivery.handle(raised())
        await rig.delivery.drain()
        rows = [r for r in rig.audit(channel="sms") if r["recipient"] == "anna"]
        assert [r["outcome"] for r in rows] == ["failed", "failover", "sent"]
        assert rig.sleeps == []

    run(check, smtp_sink, tmp_path)


def test_a_storm_is_bundled_and_the_sms_cap_holds(smtp_sink: SmtpSink, tmp_path: Path) -> None:
    async def check(rig: Rig) -> None:
        for i in range(6):
            await rig.delivery.handle(raised(target=f"t{i}", alert_id=f"t{i}-1"))
            rig.clock.advance(seconds=30)
        await rig.delivery.drain()
        assert len(rig.sms()) == 1  # the first goes at once
        rig.clock.advance(minutes=10)
        await rig.delivery.tick()
        await rig.delivery.drain()
        bodies = [s["Body"] for s in rig.sms()]
        assert len(bodies) == 2 and "5 Alarme" in bodies[1]
        # a second storm: the hourly cap (2) is spent, nothing more goes out
        for i in range(3):
            await rig.delivery.handle(raised(target=f"u{i}", alert_id=f"u{i}-1"))
        rig.clock.advance(minutes=10)
        await rig.delivery.tick()
        await rig.delivery.drain()
        assert len(rig.sms()) == 2
        assert rig.audit(outcome="rate_limited")

    run(check, smtp_sink, tmp_path, doc=routing(sms_cap={"per_hour": 2, "per_day": 10}))


def test_slow_smtp_does_not_stall_and_the_alert_escalates_by_sms(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    doc = routing()
    doc["routes"][1]["steps"] = [
        {"recipients": ["oncall:comms"], "channels": ["email"]},
        {"recipients": ["role:deputy"], "channels": ["sms"], "wait_minutes": 10},
    ]
    doc["routes"][1]["ack_timeout_minutes"] = 10

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never greets (a hung mail server) until the client quits
        writer.close()

    async def check(rig: Rig) -> None:
        started = time.monotonic()
        await rig.delivery.handle(raised())
        assert time.monotonic() - started < 0.3  # the consumer is not held up
        await rig.delivery.drain()  # email: 4 attempts, each timing out after 0.5 s
        assert rig.audit(action="escalate_early")
        await rig.delivery.tick()  # no clock advance: nobody was reached
        await rig.delivery.drain()
        assert [s["To"] for s in rig.sms()] == ["+4915100000002"]

    async def with_hung_server() -> int:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        return server, server.sockets[0].getsockname()[1]

    loop = asyncio.new_event_loop()
    server, port = loop.run_until_complete(with_hung_server())
    import threading

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        run(check, smtp_sink, tmp_path, doc=doc, smtp_port=port, send_timeout_s=2.0)
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_quiet_hours_and_ambassador_heads_up_in_their_language(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async def check(rig: Rig) -> None:
        await rig.delivery.handle(raised(target="paula", kind="ambassador", at=NIGHT))
        await rig.delivery.drain()
        await wait_for(lambda: len(emails_to(rig.smtp, "paula@")) == 1)()
        mail = emails_to(rig.smtp, "paula@")[0]
        assert str(mail["Subject"]) == "Heads-up: attention on your posts"
        body = mail.get_body(("plain",)).get_content()
        assert "Please do not reply" in body and "Anna Schmidt (+4915100000001)" in body
        assert "https://intranet.klinikum.example/leitlinie" in body
        assert rig.sms() == [] and rig.fakes.of("/ntfy") == []  # warning at night: no pager
        assert {r["detail"] for r in rig.audit(outcome="suppressed")} == {"raised: quiet_hours"}
        await wait_for(lambda: len(emails_to(rig.smtp, "anna@")) == 1)()  # email still goes

    run(check, smtp_sink, tmp_path, at=NIGHT)


def test_resolved_notice_digest_and_teams_card(smtp_sink: SmtpSink, tmp_path: Path) -> None:
    async def check(rig: Rig) -> None:
        d = rig.delivery
        await d.handle(raised(level="watch", target="t1", alert_id="w1"))
        await d.handle(raised(level="watch", target="t2", alert_id="w2"))
        await d.drain()
        assert len(rig.fakes.of("/hooks/mm")) == 2
        assert emails_to(rig.smtp, "clara@") == []
        rig.clock.advance(minutes=61)
        await d.tick()
        await d.drain()
        await wait_for(lambda: len(emails_to(rig.smtp, "clara@")) == 1)()
        assert "2 Beobachtungen" in str(emails_to(rig.smtp, "clara@")[0]["Subject"])
        escalated = CrisisAlertEscalated(
            occurred_at=rig.clock.at,
            alert_id="w1",
            target_id="t1",
            target_name="T1",
            target_kind="organisation",
            level="critical",
            previous_level="watch",
            evidence=evidence(),
        )
        await d.handle(escalated)
        await d.drain()
        [card] = rig.fakes.of("/hooks/teams")
        assert card["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
        resolved = CrisisAlertResolved(
            occurred_at=rig.clock.at,
            alert_id="w1",
            target_id="t1",
            target_name="T1",
            target_kind="organisation",
            level="critical",
            evidence=evidence(),
        )
        n_sms = len(rig.sms())
        await d.handle(resolved)
        await d.drain()
        assert len(rig.sms()) == n_sms  # an all-clear wakes nobody
        assert (
            "Entwarnung"
            in rig.fakes.of("/hooks/teams")[-1]["attachments"][0]["content"]["body"][1]["text"]
        )
        am = rig.fakes.of("/api/v2/alerts")[-1][0]
        assert am["labels"]["alert_id"] == "w1" and am["endsAt"] == rig.clock.at.isoformat()

    run(check, smtp_sink, tmp_path)


def test_drill_texts_are_marked_and_reported(smtp_sink: SmtpSink, tmp_path: Path) -> None:
    async def check(rig: Rig) -> None:
        d = rig.delivery
        await d.handle(raised(drill=True))
        await d.drain()
        await wait_for(lambda: len(emails_to(rig.smtp, "anna@")) == 1)()
        mail = emails_to(rig.smtp, "anna@")[0]
        assert "ÜBUNG / DRILL" in str(mail["Subject"])
        assert "ÜBUNG / DRILL" in mail.get_body(("plain",)).get_content()
        assert "ÜBUNG / DRILL" in mail.get_body(("html",)).get_content()
        assert all("ÜBUNG / DRILL" in s["Body"] for s in rig.sms())
        assert all("ÜBUNG / DRILL" in p["title"] for p in rig.fakes.of("/ntfy"))
        assert all("ÜBUNG / DRILL" in c["text"] for c in rig.fakes.of("/hooks/mm"))
        rig.clock.advance(minutes=4)
        d.acknowledge("hospital-1", "anna", "crisis_room")
        [entry] = d.drill_report()["alerts"]
        assert entry["acknowledged_by"] == "anna" and entry["acknowledged_after_s"] == 240
        assert {p["channel"] for p in entry["pages"]} >= {"email", "sms", "push"}

    run(check, smtp_sink, tmp_path)


def test_twilio_reply_and_status_webhooks_verify_the_signature(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async def check(rig: Rig) -> None:
        d = rig.delivery
        await d.handle(raised())
        await d.drain()
        group = d.store.group("hospital-1")
        assert group is not None and d.web is not None
        base = f"http://127.0.0.1:{d.web.port}"
        async with httpx.AsyncClient() as client:
            status_form = {
                "MessageSid": d.store.audit_rows()[-1]["provider_id"] or "",
                "MessageStatus": "undelivered",
                "ErrorCode": "30003",
            }
            sid = next(iter(rig.audit(channel="sms", outcome="sent")))["provider_id"]
            status_form["MessageSid"] = sid
            url = "https://krisenraum.example/webhooks/twilio/status"
            resp = await client.post(
                f"{base}/webhooks/twilio/status",
                data=status_form,
                headers={"X-Twilio-Signature": twilio_signature(TOKEN, url, status_form)},
            )
            assert resp.status_code == 204
            assert (
                rig.audit(action="provider_status", outcome="undelivered")[0]["alert_id"]
                == "hospital-1"
            )
            reply = {"From": "+4915100000001", "Body": f"OK {group.ack_code}", "AccountSid": SID}
            url = "https://krisenraum.example/webhooks/twilio/sms"
            forged = await client.post(
                f"{base}/webhooks/twilio/sms",
                data=reply,
                headers={"X-Twilio-Signature": "Zm9yZ2Vk"},
            )
            assert forged.status_code == 403
            assert d.store.group("hospital-1").status == "firing"  # type: ignore[union-attr]
            ok = await client.post(
                f"{base}/webhooks/twilio/sms",
                data=reply,
                headers={"X-Twilio-Signature": twilio_signature(TOKEN, url, reply)},
            )
            assert ok.status_code == 200 and "<Response><Message>" in ok.text
        acked = d.store.group("hospital-1")
        assert acked is not None and acked.status == "acknowledged" and acked.acked_by == "anna"
        assert rig.audit(action="acknowledged", channel="sms")

    run(check, smtp_sink, tmp_path, web_enabled=True)


def test_without_routing_file_it_still_logs_and_emails(smtp_sink: SmtpSink) -> None:
    async def check() -> None:
        settings = AlertingSettings(
            smtp_port=smtp_sink.port, email_to=["krisenstab@klinikum.example"]
        )
        delivery = Delivery(settings, delivery_settings=DeliverySettings(routing_file=None))
        await delivery.start()
        out = await delivery.handle(raised())
        await delivery.stop()
        assert set(out) == {"log", "email"} and out["email"].startswith("sent")

    asyncio.run(check())
    assert "Krisenwarnung" in smtp_sink.subjects()[0]
