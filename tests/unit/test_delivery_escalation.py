"""Escalation timelines on a fake clock: snapshot, steps, acknowledgement, silences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from stormwatch_alerting.domain import escalation as esc
from stormwatch_alerting.domain.routing import parse_routing

pytestmark = pytest.mark.delivery

CFG = parse_routing(
    yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "examples" / "routing.example.yaml").read_text()
    )
)
T0 = datetime(2026, 1, 12, 7, 50, tzinfo=UTC)  # 08:50 Berlin, dora on call since 08:00


def _open(level: str = "warning", at: datetime = T0) -> esc.AlertGroup:
    route = CFG.route_for("hospital", "organisation", level)
    assert route is not None
    return esc.open_group(
        alert_id="a1",
        target_id="hospital",
        target_name="Klinikum",
        target_kind="organisation",
        level=level,
        drill=False,
        route=route,
        chain=esc.snapshot(CFG, route, at),
        now=at,
        ack_code="1234",
    )


def test_unacknowledged_warning_walks_the_chain_and_stops_at_the_end() -> None:
    g = _open()
    timeline = []
    now = T0
    for _ in range(60):
        now += timedelta(minutes=1)
        if esc.due(g, now):
            g, step = esc.advance(g, now)
            timeline.append((int((now - T0).total_seconds() // 60), step.persons if step else None))
    assert timeline == [(15, ("ben",)), (30, ("clara",))]
    assert g.next_at is None and g.status == "firing"


def test_chain_is_a_snapshot_taken_when_the_alert_opens() -> None:
    before_handover = datetime(2026, 1, 12, 6, 55, tzinfo=UTC)  # 07:55 Berlin: anna
    g = _open(at=before_handover)
    assert g.chain[0].persons == ("anna",)
    later = before_handover + timedelta(minutes=20)  # dora is on call now
    assert CFG.rotations["comms"].on_call(later) == "dora"
    g, step = esc.advance(g, later)
    assert g.chain[0].persons == ("anna",) and step is not None and step.persons == ("ben",)


def test_acknowledgement_stops_escalation_and_cannot_repeat() -> None:
    g = esc.acknowledge(_open(), "anna", T0 + timedelta(minutes=3))
    assert g.status == "acknowledged" and g.acked_by == "anna"
    assert not esc.due(g, T0 + timedelta(hours=5))
    with pytest.raises(esc.TransitionError):
        esc.acknowledge(g, "ben", T0 + timedelta(minutes=4))


def test_rising_to_critical_reopens_an_acknowledged_alert_with_the_critical_chain() -> None:
    g = esc.acknowledge(_open(), "anna", T0 + timedelta(minutes=3))
    route = CFG.route_for("hospital", "organisation", "critical")
    assert route is not None
    now = T0 + timedelta(minutes=10)
    g2 = esc.raise_level(g, "critical", route, esc.snapshot(CFG, route, now), now)
    assert g2.status == "firing" and g2.level == "critical" and g2.acked_by is None
    assert set(g2.chain[0].persons) == {"dora", "ben", "clara"}
    assert g2.next_at == now + timedelta(minutes=5)
    assert esc.raise_level(g2, "warning", route, g2.chain, now) is g2  # never downwards


def test_silence_pauses_escalation_until_it_expires() -> None:
    g = esc.silence_group(_open(), T0 + timedelta(minutes=40), T0 + timedelta(minutes=1))
    assert not esc.due(g, T0 + timedelta(minutes=20))
    assert esc.due(g, T0 + timedelta(minutes=40))
    g, step = esc.advance(g, T0 + timedelta(minutes=40))
    assert g.status == "firing" and step is not None


def test_nobody_reached_escalates_at_once_but_only_while_firing() -> None:
    g = _open()
    now = T0 + timedelta(minutes=1)
    assert esc.due(esc.escalate_now(g, now), now)
    acked = esc.acknowledge(g, "anna", now)
    assert esc.escalate_now(acked, now) is acked
