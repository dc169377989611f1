"""The pipeline's Prometheus metrics, defined once for all services.

Naming follows prometheus/client_python and the Prometheus naming guide: the app prefix
``stormwatch_``, base units in the name (``_seconds``), ``_total`` only on counters,
``_info`` for metadata. Labels are bounded: the target (a configured watch list, capped at
:data:`MAX_TARGETS` distinct values), the source network, the sentiment label, the alert
level, the crisis topic (a configured set). Never an author, a handle, a mention id or a text:
they are unbounded and, for a hospital, personal data that must not leak into monitoring.

The detector works on event time, so the per-target gauges describe the last closed
event-time bucket, not the wall clock: a drill replayed at full speed moves them as a live
feed would, only faster.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase

from stormwatch_shared import events as _events
from stormwatch_shared import topics as _topics
from stormwatch_shared.events import level_rank

M = TypeVar("M", bound=MetricWrapperBase)

MAX_TARGETS = 500
"""More distinct target ids than any watch list has; beyond it ids are counted as ``other``."""

OVERFLOW = "other"


def _metric(cls: type[M], name: str, documentation: str, labels: Sequence[str], **kw: Any) -> M:
    """Create a metric, or reuse one already registered under the same name.

    Reuse keeps a module that is imported twice (tests, reloads) or a colleague's module
    that defines the same series from crashing the process with a duplicate registration.
    """
    full = name + ("_total" if cls is Counter and not name.endswith("_total") else "")
    existing = REGISTRY._names_to_collectors.get(full)
    if isinstance(existing, cls):
        return existing
    return cls(name, documentation, labelnames=tuple(labels), **kw)


# ---------------------------------------------------------------- metadata
BUILD_INFO = _metric(
    Info, "stormwatch_build", "Version of the running stormwatch service.", ["service"]
)
MODEL_INFO = _metric(
    Info, "stormwatch_model", "Sentiment model loaded by the service.", ["service"]
)

# ---------------------------------------------------------------- every consuming service
BATCH_MESSAGES = _metric(
    Histogram,
    "stormwatch_batch_messages",
    "Messages per consumed micro-batch.",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)
EVENT_LAG = _metric(
    Gauge,
    "stormwatch_event_lag_seconds",
    "Processing time minus event time of the newest event of the last batch.",
    ["service"],
)
EVENT_TIME = _metric(
    Gauge,
    "stormwatch_event_time_seconds",
    "Event time (Unix seconds) of the newest event the service has processed.",
    ["service"],
)
DEAD_LETTERS = _metric(
    Counter,
    "stormwatch_dead_letters_total",
    "Messages refused and written to <topic>.dlq, by consuming service and source topic.",
    ["service", "topic"],
)
CONSUMER_LAG = _metric(
    Gauge,
    "stormwatch_consumer_lag_messages",
    "Messages in a topic not yet committed by a consumer group (all partitions).",
    ["group", "topic"],
)

# ---------------------------------------------------------------- sentiment
MENTIONS_SCORED = _metric(
    Counter,
    "stormwatch_mentions_scored",
    "Mentions scored, by target, source network and sentiment label.",
    ["target", "source", "sentiment"],
)
MENTION_TOPICS = _metric(
    Counter,
    "stormwatch_mention_topics",
    "Crisis topics tagged on scored mentions, by target and topic.",
    ["target", "topic"],
)
INFERENCE_SECONDS = _metric(
    Histogram,
    "stormwatch_inference_duration_seconds",
    "Time to score one micro-batch (sentiment model and topic tagger), by engine.",
    ["engine"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SOURCE_LAST_SCORED = _metric(
    Gauge,
    "stormwatch_source_last_scored_timestamp_seconds",
    "Wall-clock time (Unix seconds) a mention from this source was last scored.",
    ["source"],
)

# ---------------------------------------------------------------- alerting
ALERTS = _metric(
    Counter,
    "stormwatch_alerts",
    "Alert lifecycle events from the detector: raised, escalated, resolved.",
    ["target", "level", "event", "drill"],
)
TARGET_SCORE = _metric(
    Gauge,
    "stormwatch_target_crisis_score",
    "Detector evidence score (-log10 p) of the target's last closed bucket.",
    ["target"],
)
TARGET_LEVEL = _metric(
    Gauge,
    "stormwatch_target_crisis_level",
    "Open alert level of the target: 0 none, 1 watch, 2 warning, 3 critical.",
    ["target"],
)
TARGET_EXPECTED_AUTHORS = _metric(
    Gauge,
    "stormwatch_target_expected_authors",
    "Authors the detector's seasonal baseline expects in the next bucket (5 min).",
    ["target"],
)
TARGET_FIGURES = (
    (
        "stormwatch_target_observed_mentions",
        "Mentions in the target's last closed event-time bucket.",
    ),
    (
        "stormwatch_target_observed_authors",
        "Distinct authors in the target's last closed event-time bucket.",
    ),
    (
        "stormwatch_target_negative_ratio",
        "Share of negative mentions of the target over the last hour of event time.",
    ),
)
"""Gauges (name, help) of ``TargetFigures``, labelled by target, in the order of its values;
served at scrape time by ``_FiguresCollector``."""
ALERT_EVENT_NAMES = ("raised", "escalated", "resolved")
"""Acknowledgements are counted by the delivery stage
(``stormwatch_alerting_alerts_acknowledged_total``)."""
ALERT_EVENTS = {
    "CrisisAlertRaised": "raised",
    "CrisisAlertEscalated": "escalated",
    "CrisisAlertResolved": "resolved",
}
TOPIC_LABELS = (
    _topics.MENTIONS_RAW,
    _topics.MENTIONS_SCORED,
    _topics.ALERTS,
    _topics.DETECTOR_CHANGELOG,
)


class _TargetLabels:
    """Caps the number of distinct target label values, whatever arrives on a topic."""

    def __init__(self, limit: int = MAX_TARGETS) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, target_id: str) -> str:
        if target_id in self._seen:
            return target_id
        with self._lock:
            if len(self._seen) >= self.limit:
                return OVERFLOW
            self._seen.add(target_id)
        return target_id


target_label = _TargetLabels()


def topic_label(topic: str) -> str:
    """The base topic name without a deployment's prefix (bounded label values)."""
    for base in TOPIC_LABELS:
        if topic.endswith(base):
            return base
    return OVERFLOW


def _epoch(value: datetime | float) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def prepare(service: str, *, topics: Iterable[str] = ()) -> None:
    """Create the zero series a service can produce, so rules and panels see 0, not nothing."""
    for topic in topics:
        DEAD_LETTERS.labels(service=service, topic=topic_label(topic))
    BATCH_MESSAGES.labels(service=service)


def prepare_notifications(counter: Counter, channels: Iterable[str], drill: bool = False) -> None:
    """Zero ``sent`` and ``failed`` series per channel of a (channel, outcome, drill) counter."""
    for channel in channels:
        for outcome in ("sent", "failed"):
            counter.labels(channel, outcome, str(drill).lower())


def prepare_target(target_id: str) -> None:
    """Zero alert counters for a newly seen target.

    A counter series that first appears with value 1 has no increase in PromQL, so an alert
    annotation or rule built on ``increase()`` would miss the target's first alert.
    """
    target = target_label(target_id)
    for level in _events.LEVELS:
        for event in ALERT_EVENT_NAMES:
            for drill in ("false", "true"):
                ALERTS.labels(target=target, level=level, event=event, drill=drill)


def record_batch(service: str, size: int) -> None:
    BATCH_MESSAGES.labels(service=service).observe(size)


def record_dead_letter(service: str, topic: str) -> None:
    DEAD_LETTERS.labels(service=service, topic=topic_label(topic)).inc()


def record_event_time(
    service: str, newest: datetime | float | None, now: float | None = None
) -> None:
    if newest is None:
        return
    at = _epoch(newest)
    EVENT_TIME.labels(service=service).set(at)
    EVENT_LAG.labels(service=service).set((time.time() if now is None else now) - at)


def record_model(service: str, model_id: str, engine: str) -> None:
    MODEL_INFO.labels(service=service).info({"model_id": model_id, "engine": engine})


class _Children:
    """The children of one labelled metric, looked up once per label values.

    Why: summing per label set first does not save many lookups where a batch spreads over
    hundreds of targets (512 mentions for 300 targets: ~450 label sets), and ``labels()``
    (keyword checks, a lock, a dict) took most of the 5.5 us per scored mention that
    ``record_scored`` cost (1.7 us with this cache, 2026-12-03). A child never changes once
    created and none is ever removed here; the target label is capped (``target_label``),
    so this dict is as bounded as the series.
    """

    def __init__(self, metric: MetricWrapperBase) -> None:
        self.metric = metric
        self._by_values: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        """The child for ``values``, in the metric's label order."""
        child = self._by_values.get(values)
        if child is None:
            child = self._by_values[values] = self.metric.labels(*values)
        return child


_SCORED_CHILDREN = _Children(MENTIONS_SCORED)
_TOPIC_CHILDREN = _Children(MENTION_TOPICS)


def record_scored(
    events: Sequence[Any],
    duration_s: float,
    engine: str = "default",
    now: float | None = None,
) -> None:
    """Everything the sentiment service knows after scoring one batch.

    ``events`` are ``MentionScored`` models or their msgspec structs (attributes only). The
    counts are summed per label set first: a ``labels()`` lookup per mention and topic was
    ~3 % of the service's CPU in the pipeline bench (py-spy, 2026-12-02).
    """
    INFERENCE_SECONDS.labels(engine=engine).observe(duration_s)
    now = time.time() if now is None else now
    # plain dicts: most keys of a batch are new, and a Counter meets each new key in its
    # ``__missing__``, written in Python
    scored: dict[tuple[str, str, str], int] = {}
    topics: dict[tuple[str, str], int] = {}
    latest = None
    for event in events:
        key = (event.target_id, event.mention.source, event.label)
        scored[key] = scored.get(key, 0) + 1
        for topic in event.topics:
            tkey = (event.target_id, topic)
            topics[tkey] = topics.get(tkey, 0) + 1
        if latest is None or event.occurred_at > latest:
            latest = event.occurred_at
    for (target_id, source, label), n in scored.items():
        _SCORED_CHILDREN(target_label(target_id), source, label).inc(n)
    for (target_id, topic), n in topics.items():
        _TOPIC_CHILDREN(target_label(target_id), topic).inc(n)
    for source in {source for _, source, _ in scored}:
        SOURCE_LAST_SCORED.labels(source=source).set(now)
    if latest is not None:
        record_event_time("sentiment", latest, now)


def record_alert(alert: Any, event: str | None = None) -> None:
    """Count an alert event (``event`` overrides the kind, e.g. ``acknowledged``)."""
    kind = event or ALERT_EVENTS.get(getattr(alert, "type", ""), "other")
    ALERTS.labels(
        target=target_label(alert.target_id),
        level=alert.level,
        event=kind,
        drill=str(bool(getattr(alert, "drill", False))).lower(),
    ).inc()


def record_notifications(outcomes: Any, counter: Counter, drill: bool = False) -> None:
    """Count the final outcome per channel from the simple delivery path's result.

    ``counter`` is the delivery stage's (channel, outcome, drill) counter, so both delivery
    paths report under one name. Outcomes are strings such as ``"sent: <id>"`` or
    ``"failed: <reason>"``; anything not starting with ``sent`` counts as failed, so a new
    failure wording is never lost.
    """
    if not isinstance(outcomes, Mapping):
        return  # a result shape this version does not know: never fail the delivery for it
    for channel, outcome in outcomes.items():
        ok = str(outcome).startswith("sent")
        prepare_notifications(counter, [channel], drill)
        counter.labels(channel, "sent" if ok else "failed", str(drill).lower()).inc()


class FigureSource(Protocol):
    """What ``TargetFigures`` serves: the counting itself is the alerting domain's
    (``stormwatch_alerting.domain.figures.BucketFigures``, compiled with the detector)."""

    newest: float | None
    closed: dict[str, tuple[int, int, float]]

    def observe(self, target_id: str, at: float, author_id: str, negative: bool) -> bool: ...


class TargetFigures:
    """The crisis-room gauges of per-target volume and negative share on event time, read
    from a ``FigureSource`` at scrape time; plus the gauges of the detector's status.

    ``observe`` counts one mention and zeroes the alert counters of a target seen for the
    first time.
    """

    def __init__(self, source: FigureSource) -> None:
        self.source = source
        _FIGURES_COLLECTOR.add(self)

    @property
    def newest(self) -> float | None:
        """Newest event time seen (epoch seconds), for the event-time lag gauge."""
        return self.source.newest

    def observe(self, target_id: str, at: float, author_id: str, negative: bool) -> None:
        if self.source.observe(target_id, at, author_id, negative):
            prepare_target(target_id)

    def shown(self) -> dict[str, tuple[float, float, float]]:
        """(mentions, authors, negative share) of each target label's last closed bucket:
        what the three gauges of ``TARGET_FIGURES`` read when Prometheus scrapes. Targets
        past the label cap share one label; the last of them in id order is shown."""
        closed = self.source.closed.copy()  # copied whole while the consumer loop writes
        return {target_label(tid): closed[tid] for tid in sorted(closed)}

    def publish_status(self, target_id: str, status: Mapping[str, Any]) -> None:
        """Gauges from the detector's ``status()`` (score, level, expected authors)."""
        label = target_label(target_id)
        TARGET_SCORE.labels(target=label).set(float(status.get("score") or 0.0))
        TARGET_LEVEL.labels(target=label).set(level_rank(str(status.get("level") or "")))
        expected = status.get("expected_per_bucket")
        if expected is not None:
            TARGET_EXPECTED_AUTHORS.labels(target=label).set(float(expected))


class _FiguresCollector:
    """Serves the gauges of ``TARGET_FIGURES`` from the live ``TargetFigures`` at scrape time.

    Why: the figures change at every bucket close, and every target closes a bucket every
    five minutes of event time, so a replay or a catch-up closes several per mention; three
    ``Gauge.set`` calls per close (each with its lock) were ~4 % of the alerting service's
    CPU in the pipeline bench (py-spy, 2026-12-03), for values read once per scrape.
    Where two instances hold the same target (tests), the later one's values are served.
    """

    def __init__(self) -> None:
        self._sources: list[weakref.ref[TargetFigures]] = []

    def add(self, figures: TargetFigures) -> None:
        self._sources = [r for r in self._sources if r() is not None] + [weakref.ref(figures)]

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, doc, labels=["target"]) for name, doc in TARGET_FIGURES]

    def collect(self) -> list[GaugeMetricFamily]:
        merged: dict[str, tuple[float, float, float]] = {}
        for ref in list(self._sources):
            figures = ref()
            if figures is not None:
                merged.update(figures.shown())
        families = self.describe()
        for label, values in sorted(merged.items()):
            for family, value in zip(families, values, strict=True):
                family.add_metric([label], float(value))
        return families


def _figures_collector() -> _FiguresCollector:
    """The registered collector, or a new one (a module imported twice must not register
    the same names again)."""
    existing = REGISTRY._names_to_collectors.get(TARGET_FIGURES[0][0])
    if isinstance(existing, _FiguresCollector):
        return existing
    collector = _FiguresCollector()
    REGISTRY.register(collector)
    return collector


_FIGURES_COLLECTOR = _figures_collector()
