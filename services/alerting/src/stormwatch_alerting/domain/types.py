"""Plain values the detector consumes and produces.

Times are epoch seconds (float, UTC) passed in by the caller: the domain never reads a
clock, so a two-week drill replays in seconds and tests use explicit timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TransitionKind = Literal["raised", "escalated", "resolved"]


@dataclass(frozen=True, slots=True)
class Observation:
    target_id: str
    at: float
    """Event time of the mention, epoch seconds UTC."""
    mention_id: str
    author_id: str
    followers: int
    negative: float
    """Probability that the mention is negative (0..1)."""
    label: str
    """``negative`` / ``neutral`` / ``positive``."""
    in_reply_to: str | None = None
    topics: tuple[str, ...] = ()
    url: str | None = None
    text: str = ""
    target_kind: str = "organisation"
    """``organisation`` or ``ambassador``."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of a target's alert state; the service turns it into a CrisisAlert* event."""

    kind: TransitionKind
    target_id: str
    alert_id: str
    level: str
    """Current level (for ``resolved``: the highest level the alert reached)."""
    at: float
    previous_level: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    """Keys as in ``stormwatch_shared.events.Evidence``."""
