"""Translation between Kafka events and the pure detector's plain values."""

from __future__ import annotations

from datetime import UTC, datetime

from stormwatch_shared.events import (
    CrisisAlertEscalated,
    CrisisAlertRaised,
    CrisisAlertResolved,
    Evidence,
    MentionScored,
)

from stormwatch_alerting.domain.types import Observation, Transition

AlertEventType = CrisisAlertRaised | CrisisAlertEscalated | CrisisAlertResolved


def observation(event: MentionScored) -> Observation:
    m = event.mention
    return Observation(
        target_id=event.target_id,
        at=m.created_at.timestamp(),
        mention_id=m.id,
        author_id=m.author.id,
        followers=m.author.followers,
        negative=float(event.scores.get("negative", 1.0 if event.label == "negative" else 0.0)),
        label=event.label,
        in_reply_to=m.in_reply_to,
        topics=event.topics,
        url=m.url,
        text=m.text,
        target_kind=event.target_kind,
    )


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def alert_event(
    t: Transition, *, target_name: str = "", target_kind: str = "", drill: bool = False
) -> AlertEventType:
    evidence = Evidence.model_validate(
        {k: v for k, v in t.evidence.items() if k in Evidence.model_fields}
    )
    common = {
        # Deterministic: a detector that re-runs after a crash emits the same ids, so the
        # delivery stage can drop what it already sent.
        "event_id": f"{t.alert_id}|{t.kind}|{t.level}",
        "occurred_at": _ts(t.at),
        "alert_id": t.alert_id,
        "target_id": t.target_id,
        "target_name": target_name,
        "target_kind": target_kind,
        "level": t.level,
        "evidence": evidence,
        "drill": drill,
    }
    if t.kind == "raised":
        return CrisisAlertRaised(**common)
    if t.kind == "escalated":
        return CrisisAlertEscalated(**common, previous_level=t.previous_level or "watch")
    return CrisisAlertResolved(**common)
