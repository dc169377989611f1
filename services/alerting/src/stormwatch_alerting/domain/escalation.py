"""Alert groups and their escalation chains (Grafana OnCall's model).

A group is firing, acknowledged, resolved or silenced until a time. Its chain is a snapshot
taken when it opens: who is on call at 03:00 is paged even if the rotation hands over at
03:05, and editing the routing file mid-crisis does not reshuffle a running escalation.
Every function returns a new value; the caller persists it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from stormwatch_alerting.domain.routing import Route, RoutingConfig

Status = Literal["firing", "acknowledged", "resolved", "silenced"]
LEVEL_RANK = {"watch": 1, "warning": 2, "critical": 3}


class TransitionError(ValueError):
    """An action that does not apply to the group's current state."""


@dataclass(frozen=True, slots=True)
class ChainStep:
    persons: tuple[str, ...]
    channels: tuple[str, ...]
    broadcast: tuple[str, ...]
    wait_s: float | None
    """Seconds this step may stay unacknowledged before the next one; None on the last."""


@dataclass(frozen=True, slots=True)
class AlertGroup:
    alert_id: str
    target_id: str
    target_name: str
    target_kind: str
    level: str
    drill: bool
    status: Status
    opened_at: datetime
    updated_at: datetime
    route: str
    chain: tuple[ChainStep, ...]
    step: int
    """Index of the last step paged."""
    next_at: datetime | None
    needs_ack: bool = True
    ack_code: str = ""
    acked_by: str | None = None
    acked_at: datetime | None = None
    resolved_at: datetime | None = None
    silenced_until: datetime | None = None

    @property
    def open(self) -> bool:
        return self.status != "resolved"


def snapshot(config: RoutingConfig, route: Route, at: datetime) -> tuple[ChainStep, ...]:
    """Freeze the route's steps into concrete people as of ``at``."""
    return tuple(
        ChainStep(
            config.resolve(step.recipients, at),
            step.channels,
            step.broadcast,
            step.wait.total_seconds() if step.wait is not None else None,
        )
        for step in route.steps
    )


def _next_at(chain: tuple[ChainStep, ...], step: int, now: datetime, ack: bool) -> datetime | None:
    wait = chain[step].wait_s if step < len(chain) else None
    return now + timedelta(seconds=wait) if ack and wait is not None else None


def open_group(
    *,
    alert_id: str,
    target_id: str,
    target_name: str,
    target_kind: str,
    level: str,
    drill: bool,
    route: Route,
    chain: tuple[ChainStep, ...],
    now: datetime,
    ack_code: str,
) -> AlertGroup:
    """A new group pages step 0 at once; the next step is due after its wait."""
    return AlertGroup(
        alert_id=alert_id,
        target_id=target_id,
        target_name=target_name,
        target_kind=target_kind,
        level=level,
        drill=drill,
        status="firing",
        opened_at=now,
        updated_at=now,
        route=route.name,
        chain=chain,
        step=0,
        next_at=_next_at(chain, 0, now, route.needs_ack),
        needs_ack=route.needs_ack,
        ack_code=ack_code,
    )


def raise_level(
    group: AlertGroup, level: str, route: Route, chain: tuple[ChainStep, ...], now: datetime
) -> AlertGroup:
    """A higher level is a new situation: new chain from step 0, even after an ack.

    An acknowledgement of a warning is not an acknowledgement of a critical; a silence
    stays in force until it expires.
    """
    if LEVEL_RANK.get(level, 0) <= LEVEL_RANK.get(group.level, 0):
        return group
    status: Status = "silenced" if group.status == "silenced" else "firing"
    return replace(
        group,
        level=level,
        status=status,
        updated_at=now,
        route=route.name,
        chain=chain,
        step=0,
        next_at=_next_at(chain, 0, now, route.needs_ack),
        needs_ack=route.needs_ack,
        acked_by=None,
        acked_at=None,
    )


def due(group: AlertGroup, now: datetime) -> bool:
    """Whether the group should move to its next step now."""
    if group.status == "silenced" and group.silenced_until is not None:
        if now < group.silenced_until:
            return False
        return group.next_at is not None and group.next_at <= now
    return group.status == "firing" and group.next_at is not None and group.next_at <= now


def advance(group: AlertGroup, now: datetime) -> tuple[AlertGroup, ChainStep | None]:
    """Page the next step (or nobody when the chain is exhausted)."""
    status: Status = "firing" if group.status == "silenced" else group.status
    nxt = group.step + 1
    if nxt >= len(group.chain):
        return replace(group, status=status, next_at=None, updated_at=now), None
    return (
        replace(
            group,
            status=status,
            step=nxt,
            next_at=_next_at(group.chain, nxt, now, group.needs_ack),
            updated_at=now,
        ),
        group.chain[nxt],
    )


def escalate_now(group: AlertGroup, now: datetime) -> AlertGroup:
    """No one could be reached on this step: do not wait out the timeout."""
    if group.status != "firing" or group.step + 1 >= len(group.chain):
        return group
    return replace(group, next_at=now, updated_at=now)


def acknowledge(group: AlertGroup, by: str, now: datetime) -> AlertGroup:
    if group.status == "resolved":
        raise TransitionError("alert already resolved")
    if group.status == "acknowledged":
        raise TransitionError(f"already acknowledged by {group.acked_by}")
    return replace(
        group, status="acknowledged", acked_by=by, acked_at=now, next_at=None, updated_at=now
    )


def resolve(group: AlertGroup, now: datetime) -> AlertGroup:
    if group.status == "resolved":
        return group
    return replace(group, status="resolved", resolved_at=now, next_at=None, updated_at=now)


def silence_group(group: AlertGroup, until: datetime, now: datetime) -> AlertGroup:
    """Escalation pauses until ``until``; if still unacknowledged then, it goes on."""
    if group.status == "resolved":
        raise TransitionError("alert already resolved")
    next_at = group.next_at if group.status == "firing" else None
    if next_at is not None and next_at < until:
        next_at = until
    return replace(group, status="silenced", silenced_until=until, next_at=next_at, updated_at=now)
