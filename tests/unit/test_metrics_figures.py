"""Per-target gauges on event time and the small recording helpers, with explicit times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY, Counter
from stormwatch_alerting.domain.figures import BucketFigures
from stormwatch_shared import metrics
from stormwatch_shared.events import CrisisAlertEscalated, CrisisAlertRaised


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


# (observations as (target, minute, author, negative), expected observed mentions, authors,
#  negative share) after the last observation; buckets are 5 minutes.
CASES = [
    pytest.param(
        [("fig-a", 0, "u1", False), ("fig-a", 1, "u2", True), ("fig-a", 6, "u1", False)],
        2.0,
        2.0,
        0.5,
        id="closing a bucket publishes its counts",
    ),
    pytest.param(
        [("fig-b", 0, "u1", True), ("fig-b", 2, "u1", True), ("fig-b", 5, "u2", False)],
        2.0,
        1.0,
        1.0,
        id="one author posting twice is one author",
    ),
    pytest.param(
        [("fig-c", 0, "u1", True), ("fig-c", 1, "u2", False), ("fig-c", 40, "u3", False)],
        0.0,
        0.0,
        0.5,
        id="a gap means the last closed bucket was empty",
    ),
    pytest.param(
        [("fig-d", 0, "u1", True), ("fig-d", 75, "u2", False)],
        0.0,
        0.0,
        0.0,
        id="the negative share forgets after an hour",
    ),
    pytest.param(
        [("fig-e", 10, "u1", False), ("fig-e", 3, "u2", True), ("fig-e", 16, "u3", False)],
        2.0,
        2.0,
        0.5,
        id="a late mention counts in the open bucket",
    ),
]


@pytest.mark.parametrize(("obs", "mentions", "authors", "share"), CASES)
def test_target_figures(
    obs: list[tuple[str, int, str, bool]], mentions: float, authors: float, share: float
) -> None:
    figures = metrics.TargetFigures(BucketFigures(bucket_s=300))
    t0 = 1_773_000_000 - 1_773_000_000 % 300
    for target, minute, author, negative in obs:
        figures.observe(target, t0 + minute * 60, author, negative)
    target = obs[0][0]
    assert sample("stormwatch_target_observed_mentions", target=target) == mentions
    assert sample("stormwatch_target_observed_authors", target=target) == authors
    assert sample("stormwatch_target_negative_ratio", target=target) == share
    assert figures.newest == t0 + max(m for _, m, _, _ in obs) * 60
    # A new target starts with zero alert counters, so its first alert shows in increase().
    assert sample(
        "stormwatch_alerts_total", target=target, level="watch", event="raised", drill="false"
    ) == (0.0)


@pytest.mark.parametrize(
    ("status", "score", "level", "expected"),
    [
        ({"score": 7.5, "level": "warning", "expected_per_bucket": 1.25}, 7.5, 2.0, 1.25),
        ({"score": 0.0, "level": None, "expected_per_bucket": 0.5}, 0.0, 0.0, 0.5),
        ({"score": 13.0, "level": "critical"}, 13.0, 3.0, None),
    ],
)
def test_detector_status_becomes_gauges(
    status: dict[str, object], score: float, level: float, expected: float | None
) -> None:
    target = f"status-{level}-{expected}"
    metrics.TargetFigures(BucketFigures()).publish_status(target, status)
    assert sample("stormwatch_target_crisis_score", target=target) == score
    assert sample("stormwatch_target_crisis_level", target=target) == level
    assert sample("stormwatch_target_expected_authors", target=target) == expected


NOTIFY = Counter(
    "unit_test_notifications", "delivery-stage shaped counter", ["channel", "outcome", "drill"]
)


@pytest.mark.parametrize(
    ("outcomes", "drill", "sent", "failed"),
    [
        ({"chan-a": "sent: <id@x>"}, False, 1.0, 0.0),
        ({"chan-b": "failed: SMTP unreachable"}, False, 0.0, 1.0),
        ({"chan-c": "dropped: rate limit"}, True, 0.0, 1.0),
        ("not a mapping", False, None, None),
    ],
)
def test_notification_outcomes(
    outcomes: object, drill: bool, sent: float | None, failed: float | None
) -> None:
    before = total_notifications()
    metrics.record_notifications(outcomes, NOTIFY, drill)
    if isinstance(outcomes, dict):
        labels = {"channel": next(iter(outcomes)), "drill": str(drill).lower()}
        assert sample("unit_test_notifications_total", **labels, outcome="sent") == sent
        assert sample("unit_test_notifications_total", **labels, outcome="failed") == failed
        assert total_notifications() == before + 1
    else:
        assert total_notifications() == before


def total_notifications() -> float:
    return sum(
        s.value
        for family in REGISTRY.collect()
        if family.name == "unit_test_notifications"
        for s in family.samples
        if s.name.endswith("_total")
    )


def test_alert_events_are_counted_by_kind_level_and_drill() -> None:
    at = datetime(2026, 3, 11, 16, 5, tzinfo=UTC)
    common = {"occurred_at": at, "alert_id": "count-t:1", "target_id": "count-t"}
    metrics.record_alert(CrisisAlertRaised(**common, level="watch", drill=True))
    metrics.record_alert(
        CrisisAlertEscalated(**common, level="critical", previous_level="watch", drill=True)
    )
    metrics.record_alert(CrisisAlertRaised(**common, level="watch"), event="raised-again")
    labels = {"target": "count-t"}
    assert sample("stormwatch_alerts_total", **labels, level="watch", event="raised", drill="true")
    assert sample(
        "stormwatch_alerts_total", **labels, level="critical", event="escalated", drill="true"
    )
    assert sample(
        "stormwatch_alerts_total", **labels, level="watch", event="raised-again", drill="false"
    )


def test_event_lag_is_processing_minus_event_time() -> None:
    metrics.record_event_time("unit-svc", datetime(2026, 1, 1, tzinfo=UTC), now=1767225660.0)
    assert sample("stormwatch_event_lag_seconds", service="unit-svc") == 60.0
    assert sample("stormwatch_event_time_seconds", service="unit-svc") == 1767225600.0


def test_running_hour_sums_match_the_buckets_they_hold() -> None:
    """The share reads sums kept as buckets enter and leave the hour's rings; they must
    never drift from the buckets the rings hold, nor from a plain list of the same buckets."""
    import random

    rng = random.Random(7)
    counts = BucketFigures(bucket_s=300, share_buckets=12)
    figures = metrics.TargetFigures(counts)
    t = 1_773_000_000.0
    reference: list[tuple[int, int]] = []  # every closed bucket, as the old deque held them
    open_bucket, mentions, negative = -1, 0, 0
    for _ in range(3000):
        t += rng.choice([5.0, 60.0, 900.0, 7200.0])
        is_negative = rng.random() < 0.4
        b = int(t // 300)
        if open_bucket < 0:
            open_bucket = b  # the target's first mention opens its first bucket
        elif b > open_bucket:
            reference.append((mentions, negative))
            reference.extend([(0, 0)] * min(b - open_bucket - 1, 12))
            open_bucket, mentions, negative = b, 0, 0
        mentions, negative = mentions + 1, negative + int(is_negative)
        figures.observe("fig-sums", t, f"u{rng.randrange(30)}", is_negative)
        hour = counts.hour("fig-sums")
        assert hour == reference[-12:]
        assert counts.hour_sums("fig-sums") == (sum(n for n, _ in hour), sum(k for _, k in hour))
    total = sum(n for n, _ in hour)
    share = sum(k for _, k in hour) / total if total else 0.0
    assert sample("stormwatch_target_negative_ratio", target="fig-sums") == share


def test_figures_are_read_at_scrape_time_and_the_later_instance_wins() -> None:
    from prometheus_client import generate_latest

    t0 = 1_773_000_000 - 1_773_000_000 % 300
    first = metrics.TargetFigures(BucketFigures(bucket_s=300))
    second = metrics.TargetFigures(BucketFigures(bucket_s=300))
    for figures, authors in ((first, 3), (second, 2)):
        for i in range(authors):
            figures.observe("fig-twice", t0 + i, f"u{i}", i == 0)
        figures.observe("fig-twice", t0 + 300, "u9", False)  # closes the first bucket
    assert sample("stormwatch_target_observed_authors", target="fig-twice") == 2.0
    assert sample("stormwatch_target_negative_ratio", target="fig-twice") == 0.5
    text = generate_latest().decode()
    assert text.count('stormwatch_target_observed_mentions{target="fig-twice"}') == 1
    assert "# TYPE stormwatch_target_observed_mentions gauge" in text
    del second, figures  # a collected instance no longer serves: the earlier one's show
    import gc

    gc.collect()
    assert sample("stormwatch_target_observed_authors", target="fig-twice") == 3.0
    # the collector is registered once, however often the module asks for it
    assert metrics._figures_collector() is metrics._FIGURES_COLLECTOR


@pytest.mark.parametrize(("bucket_s", "share_buckets"), [(0.0, 12), (-300.0, 12), (300.0, 0)])
def test_bucket_figures_refuse_a_bucket_or_hour_that_cannot_be(
    bucket_s: float, share_buckets: int
) -> None:
    with pytest.raises(ValueError, match="bucket_s"):
        BucketFigures(bucket_s, share_buckets)


def test_observe_says_when_a_target_is_new() -> None:
    counts = BucketFigures()
    assert counts.observe("fig-new", 1_773_000_000.0, "u1", False) is True
    assert counts.observe("fig-new", 1_773_000_001.0, "u2", True) is False
    assert counts.newest == 1_773_000_001.0
