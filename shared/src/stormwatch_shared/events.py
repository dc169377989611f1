"""Event schemas exchanged over Kafka.

Events are immutable facts, named in the past tense. Every event carries an ``event_id``
(idempotency key for at-least-once delivery), a ``schema_version`` (consumers reject what
they do not understand instead of guessing) and its event time ``occurred_at``; replays and
detectors run on event time, never on the clock of the machine that processes them.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

SCHEMA_VERSION = 1

Level = Literal["watch", "warning", "critical"]
LEVELS: tuple[Level, ...] = ("watch", "warning", "critical")
SentimentLabel = Literal["negative", "neutral", "positive"]
Source = Literal["x", "mastodon", "bluesky", "rss", "replay"]

MAX_EVENT_ID_CHARS = 100
"""Event ids are dedup keys kept in memory by every consumer: bounded, whatever they derive from."""

MAX_TEXT_CHARS = 10_000
"""Posts longer than this are cut: no network allows more, and unbounded texts are a DoS."""


def _utc(value: datetime) -> datetime:
    """Naive datetimes are ambiguous across services; reject them instead of guessing."""
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (use UTC, e.g. 2026-03-11T15:04:09Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-01:00 is a valid timestamp but past datetime's range in UTC;
        # a ValueError makes it a validation error (a dead letter), not a crashed consumer
        raise ValueError("timestamp out of range in UTC (years 1-9999)") from None


def _nearest_microsecond(value: object) -> object:
    """A timestamp text with more than six fractional digits, read as msgspec reads it:
    rounded to the nearest microsecond (half up), where pydantic alone would truncate.

    Why: the hot consumers decode with msgspec (``codec.FastDecoder``), everything else with
    these models, and both must give the same instant. Reading such a text with msgspec
    itself makes them agree by construction; before 2026-12-04 the fast path instead looked
    for long fractions in every message first (1.3 µs per decode, twice per mention in the
    pipeline) and left those messages to pydantic's truncation. A text msgspec cannot read
    (rounding past 9999-12-31, a spelling only pydantic knows) stays pydantic's to judge,
    and the fast path, which cannot read it either, leaves the message to pydantic too.
    """
    if isinstance(value, str) and "." in value:
        fraction = value.partition(".")[2]
        if len(fraction) - len(fraction.lstrip("0123456789")) > 6:
            try:
                return msgspec.json.decode(msgspec.json.encode(value), type=datetime)
            except msgspec.ValidationError:
                return value
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_nearest_microsecond), AfterValidator(_utc)]

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""A model's probability. Bounded because the detector adds them up per window in sliding
sums: one infinity (from a broken engine or a forged message) left a target's negative
window sums NaN for good, since inf - inf is NaN once it slides out (measured 2026-12-02:
still NaN 40,000 mentions later), so that target could no longer alert on them."""


def new_event_id() -> str:
    return uuid.uuid4().hex


def derived_event_id(*parts: str) -> str:
    """A deterministic event id from the ids an event derives from, joined by ``|``.

    Why: a re-published mention must be recognisably the same event downstream (dedup on
    ``event_id``), so ids are built from the mention id and the target, and the scored
    event's from the received one's. But a mention id comes from outside (a Mastodon
    status URI, a Bluesky at:// URI with a long DID) and may take most of the id's length
    on its own; an id past ``MAX_EVENT_ID_CHARS`` failed validation where the event was
    built, and the service stopped on that mention at every retry. Past the limit the id
    keeps a readable head and ends in a digest of the whole, so it stays deterministic and
    distinct (160 bits).
    """
    joined = "|".join(parts)
    if len(joined) <= MAX_EVENT_ID_CHARS:
        return joined
    digest = hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{joined[: MAX_EVENT_ID_CHARS - 41]}~{digest}"


ALERT_TRANSITIONS = ("raised", "escalated", "resolved")


def alert_event_id(alert_id: str, transition: str, level: str) -> str:
    """The id of one alert's transition at one level: a detector that re-runs after a crash
    emits the same ids, so the delivery stage can drop what it already sent. Alert ids hold
    the target id (up to 100 characters), so these go through ``derived_event_id``."""
    return derived_event_id(alert_id, transition, level)


def alert_event_ids(alert_id: str) -> list[str]:
    """Every id ``alert_event_id`` can give for this alert (for erasing them)."""
    return [alert_event_id(alert_id, t, lv) for t in ALERT_TRANSITIONS for lv in LEVELS]


def level_rank(level: str) -> int:
    """Order of alert levels; unknown levels rank below ``watch``."""
    return LEVELS.index(level) + 1 if level in LEVELS else 0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Author(_Frozen):
    id: str = Field(max_length=200)
    handle: str = Field(max_length=200)
    followers: int = Field(default=0, ge=0)


class EngagementMetrics(_Frozen):
    likes: int = Field(default=0, ge=0)
    reposts: int = Field(default=0, ge=0)
    replies: int = Field(default=0, ge=0)


class _Event(_Frozen):
    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=MAX_EVENT_ID_CHARS)
    schema_version: int = SCHEMA_VERSION
    drill: bool = False
    """Drill events rehearse the chain; they must never be mistaken for a real crisis."""


class Mention(_Frozen):
    """One public post as the drill format (``scenarios/FORMAT.md``) and the sources give it."""

    id: str = Field(min_length=1, max_length=600)
    source: Source
    created_at: UtcDatetime
    text: str = Field(max_length=MAX_TEXT_CHARS)
    lang: str | None = Field(default=None, max_length=16)
    author: Author
    url: str | None = Field(default=None, max_length=2000)
    in_reply_to: str | None = Field(default=None, max_length=600)
    metrics: EngagementMetrics = Field(default_factory=EngagementMetrics)


class MentionReceived(_Event):
    """A mention matched at least one watched target. Published once per target, keyed by it."""

    type: Literal["MentionReceived"] = "MentionReceived"
    occurred_at: UtcDatetime
    target_id: str = Field(min_length=1, max_length=100)
    target_ids: tuple[str, ...] = Field(min_length=1)
    target_name: str = Field(default="", max_length=200)
    target_kind: str = Field(default="organisation", max_length=40)
    mention: Mention


class MentionScored(_Event):
    """A received mention with its sentiment and crisis topics."""

    type: Literal["MentionScored"] = "MentionScored"
    occurred_at: UtcDatetime
    target_id: str = Field(min_length=1, max_length=100)
    target_ids: tuple[str, ...] = Field(min_length=1)
    target_name: str = Field(default="", max_length=200)
    target_kind: str = Field(default="organisation", max_length=40)
    mention: Mention
    label: SentimentLabel
    scores: dict[SentimentLabel, Probability]
    language: str
    language_supported: bool = True
    topics: tuple[str, ...] = ()
    model_id: str
    received_event_id: str


class Evidence(_Frozen):
    """Why an alert fired: enough for a human to judge it without opening a dashboard."""

    observed: float = 0.0
    expected: float = 0.0
    p_value: float | None = None
    score: float = 0.0
    negative_share: float = 0.0
    negative_share_usual: float = 0.0
    distinct_authors: int = 0
    new_authors: int = 0
    new_author_share: float = 0.0
    reach: int = 0
    topics: tuple[str, ...] = ()
    top_posts: tuple[dict[str, Any], ...] = ()
    gates: dict[str, bool] = Field(default_factory=dict)
    window_start: UtcDatetime | None = None
    window_end: UtcDatetime | None = None


class _AlertEvent(_Event):
    occurred_at: UtcDatetime
    alert_id: str = Field(min_length=1, max_length=200)
    target_id: str = Field(min_length=1, max_length=100)
    target_name: str = ""
    target_kind: str = ""
    level: Level
    evidence: Evidence = Field(default_factory=Evidence)


class CrisisAlertRaised(_AlertEvent):
    type: Literal["CrisisAlertRaised"] = "CrisisAlertRaised"


class CrisisAlertEscalated(_AlertEvent):
    type: Literal["CrisisAlertEscalated"] = "CrisisAlertEscalated"
    previous_level: Level


class CrisisAlertResolved(_AlertEvent):
    type: Literal["CrisisAlertResolved"] = "CrisisAlertResolved"
    """``level`` is the highest level the alert reached."""


AlertEvent = Annotated[
    CrisisAlertRaised | CrisisAlertEscalated | CrisisAlertResolved, Field(discriminator="type")
]


class DeadLettered(_Frozen):
    """What goes to ``<topic>.dlq``: the original bytes, why they were refused, and from where."""

    type: Literal["DeadLettered"] = "DeadLettered"
    event_id: str = Field(default_factory=new_event_id)
    schema_version: int = SCHEMA_VERSION
    occurred_at: UtcDatetime = Field(default_factory=lambda: datetime.now(UTC))
    service: str
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    reason: str
    payload: str
    """The original message, decoded as UTF-8 with replacement so it can always be stored."""


EVENT_MODELS: dict[str, type[BaseModel]] = {
    "MentionReceived": MentionReceived,
    "MentionScored": MentionScored,
    "CrisisAlertRaised": CrisisAlertRaised,
    "CrisisAlertEscalated": CrisisAlertEscalated,
    "CrisisAlertResolved": CrisisAlertResolved,
    "DeadLettered": DeadLettered,
}
