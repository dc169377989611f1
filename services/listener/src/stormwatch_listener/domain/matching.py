"""Turning a raw mention into one ``MentionReceived`` per watched target it concerns.

One event per target (not one per mention) because topics are keyed by target: each
target's detector must see every mention that concerns it on its own partition.
"""

from __future__ import annotations

from stormwatch_shared.events import Mention, MentionReceived
from stormwatch_shared.targets import TargetMatcher


def received_events(
    mention: Mention, matcher: TargetMatcher, *, drill: bool = False
) -> list[MentionReceived]:
    ids = matcher.match(mention.text)
    if not ids:
        return []
    targets = tuple(ids)
    return [
        MentionReceived(
            # Deterministic id: a re-published mention (restart, replay) is recognisably
            # the same event downstream, which makes at-least-once effectively once.
            event_id=f"{mention.id}|{tid}",
            occurred_at=mention.created_at,
            target_id=tid,
            target_ids=targets,
            target_name=matcher.targets[tid].name,
            target_kind=matcher.targets[tid].kind,
            mention=mention,
            drill=drill,
        )
        for tid in ids
    ]
