"""What a source is.

``MentionSource`` is what ``publish_source`` consumes: an async stream of mentions. Live
sources also have ``checkpoint()``: the publisher calls it once everything yielded so far
has been acknowledged by Kafka, and only then does the source persist its resume cursor.

Behind a live source sits a ``Connector`` (one per network): the transport (a base URL,
so tests and proxies can point it elsewhere), raw events with a resume cursor, and a pure
normalizer. The shared ``SourceRunner`` does everything else: backoff, the no-data
watchdog, gap backfill after a reconnect, deduplication and the cursor-after-ack rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from stormwatch_shared.events import Mention

from stormwatch_listener.domain.backoff import BackoffPolicy, FailureKind


class MentionSource(Protocol):
    name: str

    def mentions(self) -> AsyncIterator[Mention]:
        """Yield mentions in the order the source delivers them (event time for replays)."""
        ...


@runtime_checkable
class CheckpointedSource(Protocol):
    name: str

    def mentions(self) -> AsyncIterator[Mention]: ...

    async def checkpoint(self) -> None:
        """Everything yielded so far is durably in Kafka: the cursor may move past it."""
        ...


EventKind = Literal["post", "keepalive", "connected", "position"]


@dataclass(frozen=True)
class RawEvent:
    """One thing a connection delivered.

    ``payload`` is the original bytes (what a dead letter keeps); ``data`` the parsed object
    when the connector already has it; ``cursor`` the resume position after this event
    (None: unchanged). ``position`` events only move the cursor (a feed poll finished).
    """

    kind: EventKind = "post"
    payload: bytes = b""
    data: Any = None
    cursor: str | None = None


class SourceError(Exception):
    """A failure of the connection, classified for the backoff policy."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s


class BudgetExhausted(Exception):
    """The monthly read budget is used up; reading resumes at ``resume_at``."""

    def __init__(self, resume_at: datetime, used: int, limit: int) -> None:
        super().__init__(f"read budget used up ({used}/{limit}) until {resume_at.isoformat()}")
        self.resume_at = resume_at
        self.used = used
        self.limit = limit


class FatalSourceError(Exception):
    """Configuration or authorisation problem no retry can fix (e.g. 401, a bad token)."""


class Connector(Protocol):
    name: str
    """The ``Mention.source`` value and the metrics label: x, mastodon, bluesky, rss."""
    policy: BackoffPolicy
    no_data_timeout_s: float | None
    """Reconnect when nothing (keep-alives included) arrived for this long; None: never."""

    async def start(self) -> None:
        """One-time set-up before the first connection (e.g. syncing X rules)."""
        ...

    def stream(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """One connection; ends or raises ``SourceError`` when it drops."""
        ...

    def backfill(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """What was published since ``cursor`` while not connected, oldest first."""
        ...

    def normalize(self, event: RawEvent) -> Mention | None:
        """Raise ``NormalizeError`` for a malformed payload; None for a non-post event."""
        ...

    async def enrich(self, mentions: list[Mention]) -> list[Mention]:
        """Add what the event lacks (e.g. follower counts) for mentions that matched."""
        ...

    async def close(self) -> None: ...
