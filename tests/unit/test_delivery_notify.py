"""Pure notify stages: suppression, dedup keys, SMS cap and bundling, retries, failover."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from stormwatch_alerting.domain import notify
from stormwatch_alerting.domain.notify import Intent, RetryPolicy, Silence
from stormwatch_alerting.domain.routing import MaintenanceWindow, parse_routing

pytestmark = pytest.mark.delivery

CFG = parse_routing(
    yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "examples" / "routing.example.yaml").read_text()
    )
)
NOON = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # 12:00 Berlin
NIGHT = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # 00:00 Berlin


def intent(**kw: object) -> Intent:
    base = Intent("a1", "hospital", "warning", "raised", 0, "anna", "sms")
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "at", "silences", "expected"),
    [
        ({}, NOON, [], None),
        ({}, NIGHT, [], "quiet_hours"),
        ({"level": "critical"}, NIGHT, [], None),
        ({"channel": "email"}, NIGHT, [], None),
        ({"kind": "resolved", "channel": "email"}, NIGHT, [], None),
        ({}, NOON, [Silence("s1", NOON, NOON + timedelta(hours=1), "anna")], "silenced:s1"),
        (
            {},
            NOON + timedelta(hours=1),
            [Silence("s1", NOON, NOON + timedelta(hours=1), "anna")],
            None,
        ),
        (
            {"level": "critical"},
            NOON,
            [Silence("s2", NOON, NOON + timedelta(hours=1), "anna", max_level="warning")],
            None,
        ),
        (
            {},
            NOON,
            [Silence("s3", NOON, NOON + timedelta(hours=1), "anna", target_id="paula")],
            None,
        ),
    ],
)
def test_suppression(kw: dict, at: datetime, silences: list, expected: str | None) -> None:
    assert notify.suppression(intent(**kw), CFG, silences, at) == expected


def test_maintenance_window_suppresses_its_levels_only() -> None:
    window = MaintenanceWindow(
        "Umzug", NOON, NOON + timedelta(hours=2), frozenset({"watch", "warning"})
    )
    cfg = replace(CFG, maintenance=(window,))
    assert notify.suppression(intent(channel="email"), cfg, [], NOON) == "maintenance:Umzug"
    assert notify.suppression(intent(level="critical"), cfg, [], NOON) is None


def test_idempotency_key_distinguishes_level_recipient_channel_and_kind() -> None:
    a = intent()
    variants = [
        intent(level="critical"),
        intent(recipient="ben"),
        intent(channel="email"),
        intent(kind="resolved"),
        intent(step=1),
        intent(alert_id="a2"),
    ]
    keys = {a.key} | {v.key for v in variants}
    assert len(keys) == 1 + len(variants)
    assert notify.fresh([a, intent(), variants[0]], sent_keys=[variants[0].key]) == [a]


@pytest.mark.parametrize(
    ("sent_minutes_ago", "per_hour", "per_day", "allowed"),
    [
        ([], 2, 5, True),
        ([5, 50], 2, 5, False),  # hourly cap reached
        ([61, 120], 2, 5, True),  # older than an hour
        ([70, 200, 300, 400, 1000], 2, 5, False),  # daily cap reached
        ([70, 200, 300, 400, 1500], 2, 5, True),  # one fell out of the day
    ],
)
def test_sms_cost_cap(
    sent_minutes_ago: list[int], per_hour: int, per_day: int, allowed: bool
) -> None:
    sent = [NOON - timedelta(minutes=m) for m in sent_minutes_ago]
    assert notify.sms_allowed(sent, NOON, per_hour, per_day) is allowed


def test_sms_bundling_window() -> None:
    w = timedelta(minutes=10)
    assert not notify.sms_hold(None, NOON, w)
    assert notify.sms_hold(NOON - timedelta(minutes=3), NOON, w)
    assert not notify.sms_hold(NOON - timedelta(minutes=10), NOON, w)
    held = NOON - timedelta(minutes=2)
    assert not notify.bundle_due(held, NOON - timedelta(minutes=5), NOON, w)
    assert notify.bundle_due(held, NOON - timedelta(minutes=10), NOON, w)


@pytest.mark.parametrize(
    ("attempt", "recoverable", "retry_after", "rand", "expected"),
    [
        (1, True, None, 0.0, 0.5),
        (1, True, None, 1.0, 1.0),
        (3, True, None, 0.5, 3.0),  # 4 s backoff: 2 fixed + 1 jitter
        (3, True, 20.0, 0.5, 20.0),  # Retry-After wins when longer
        (1, True, 0.1, 1.0, 1.0),  # ... not when shorter
        (1, True, 10_000.0, 0.5, None),  # absurd Retry-After: give up, fail over
        (1, False, None, 0.5, None),  # 4xx: never retried
        (4, True, None, 0.5, None),  # attempts exhausted
        (10, True, None, 1.0, None),
    ],
)
def test_retry_delay(
    attempt: int, recoverable: bool, retry_after: float | None, rand: float, expected: float | None
) -> None:
    policy = RetryPolicy(attempts=4, base_s=1.0, cap_s=60.0)
    got = notify.retry_delay(
        policy, attempt, recoverable=recoverable, retry_after_s=retry_after, rand=rand
    )
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(attempts=30, base_s=1.0, cap_s=8.0)
    delays = {
        notify.retry_delay(policy, 20, recoverable=True, retry_after_s=None, rand=r)
        for r in (0.0, 0.3, 1.0)
    }
    assert min(delays) == 4.0 and max(delays) == 8.0 and len(delays) == 3


def test_provider_in_outage_goes_last_but_is_not_dropped() -> None:
    down = {"twilio": NOON + timedelta(minutes=5)}
    assert notify.provider_order(["twilio", "http"], down, NOON) == ["http", "twilio"]
    assert notify.provider_order(["twilio", "http"], down, NOON + timedelta(minutes=5)) == [
        "twilio",
        "http",
    ]


def test_resolved_notices_skip_pagers_and_reach_everyone_paged_once() -> None:
    from stormwatch_alerting.domain import escalation as esc

    route = CFG.route_for("hospital", "organisation", "warning")
    assert route is not None
    g = esc.open_group(
        alert_id="a1",
        target_id="hospital",
        target_name="K",
        target_kind="organisation",
        level="warning",
        drill=False,
        route=route,
        chain=esc.snapshot(CFG, route, NOON),
        now=NOON,
        ack_code="1",
    )
    g, _ = esc.advance(g, NOON + timedelta(minutes=15))
    got = {(i.recipient, i.channel) for i in notify.resolved_intents(g)}
    oncall = CFG.rotations["comms"].on_call(NOON)
    assert got == {(oncall, "email"), ("ben", "email"), ("krisenstab", "chat")}


@pytest.mark.parametrize(
    ("consent", "level", "at", "channels"),
    [
        (True, "warning", NOON, {"email", "sms"}),
        (True, "warning", NIGHT, {"email"}),  # no SMS at night below critical
        (True, "critical", NIGHT, {"email", "sms"}),
        (False, "critical", NOON, set()),
    ],
)
def test_ambassador_heads_up_needs_consent_and_respects_the_night(
    consent: bool, level: str, at: datetime, channels: set[str]
) -> None:
    from stormwatch_alerting.domain import escalation as esc

    amb = replace(CFG.ambassadors["paula"], consent=consent)
    cfg = replace(CFG, ambassadors={"paula": amb})
    route = cfg.route_for("paula", "ambassador", level)
    assert route is not None
    g = esc.open_group(
        alert_id="a2",
        target_id="paula",
        target_name="Paula",
        target_kind="ambassador",
        level=level,
        drill=False,
        route=route,
        chain=esc.snapshot(cfg, route, at),
        now=at,
        ack_code="2",
    )
    intents, why = notify.heads_up_intents(cfg, g, at)
    assert {i.channel for i in intents} == channels  # paula has no ntfy topic
    assert all(i.recipient == "paula" for i in intents)
    assert (why == "no consent") is (not consent)
