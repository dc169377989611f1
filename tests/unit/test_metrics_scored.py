"""``record_scored``: per-batch counts reach the right series, through the child cache."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from prometheus_client import REGISTRY
from stormwatch_shared import metrics

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _event(target: str, source: str, label: str, topics: tuple[str, ...], minute: int) -> object:
    # the attributes record_scored reads (it takes models or msgspec structs alike)
    return SimpleNamespace(
        target_id=target,
        label=label,
        topics=topics,
        occurred_at=T0.replace(minute=minute),
        mention=SimpleNamespace(source=source),
    )


def _scored(target: str, source: str, label: str) -> float:
    value = REGISTRY.get_sample_value(
        "stormwatch_mentions_scored_total",
        {"target": target, "source": source, "sentiment": label},
    )
    return value or 0.0


def _topic(target: str, topic: str) -> float:
    value = REGISTRY.get_sample_value(
        "stormwatch_mention_topics_total", {"target": target, "topic": topic}
    )
    return value or 0.0


def test_counts_per_label_set_and_topic_across_batches() -> None:
    a, b = "metrics-test-a", "metrics-test-b"
    before = (_scored(a, "x", "negative"), _scored(b, "mastodon", "positive"), _topic(a, "hygiene"))
    batch = [
        _event(a, "x", "negative", ("hygiene", "wait_times"), 1),
        _event(a, "x", "negative", ("hygiene",), 7),
        _event(b, "mastodon", "positive", (), 3),
    ]
    for _ in range(2):  # the second batch goes through the cached children
        metrics.record_scored(batch, 0.01, now=1000.0)
    assert _scored(a, "x", "negative") - before[0] == 4
    assert _scored(b, "mastodon", "positive") - before[1] == 2
    assert _topic(a, "hygiene") - before[2] == 4
    assert _topic(a, "wait_times") >= 2 and _scored(a, "x", "positive") == 0
    newest = REGISTRY.get_sample_value("stormwatch_event_time_seconds", {"service": "sentiment"})
    assert newest == T0.replace(minute=7).timestamp()


def test_cached_child_is_the_metric_s_own() -> None:
    child = metrics._SCORED_CHILDREN("metrics-test-c", "x", "neutral")
    assert child is metrics._SCORED_CHILDREN("metrics-test-c", "x", "neutral")
    assert child is metrics.MENTIONS_SCORED.labels(
        target="metrics-test-c", source="x", sentiment="neutral"
    )
