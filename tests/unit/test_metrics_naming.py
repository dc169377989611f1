"""The pipeline's metrics follow client_python's naming rules and carry no personal data."""

from __future__ import annotations

import re

import pytest
from prometheus_client import Counter, Gauge, Histogram, Info
from prometheus_client.metrics import MetricWrapperBase
from stormwatch_shared import metrics

METRICS: dict[str, MetricWrapperBase] = {
    name: value for name, value in vars(metrics).items() if isinstance(value, MetricWrapperBase)
}
UNITS = ("seconds", "bytes", "messages", "ratio", "authors", "mentions")
PERSONAL = {"author", "authors", "handle", "handles", "mention", "mentions", "user", "users"}
PERSONAL |= {"username", "text", "texts", "id", "ids", "url", "email"}


def exposed_names(metric: MetricWrapperBase) -> list[str]:
    return [family.name for family in metric.describe()]


COLLECTED = metrics._FIGURES_COLLECTOR.describe()
"""Gauges served at scrape time by a collector instead of ``Gauge`` objects."""


def test_there_is_a_metric_for_every_figure_the_issue_asks_for() -> None:
    names = {exposed_names(m)[0] for m in METRICS.values()} | {f.name for f in COLLECTED}
    for wanted in (
        "stormwatch_mentions_scored",
        "stormwatch_target_negative_ratio",
        "stormwatch_target_crisis_score",
        "stormwatch_target_crisis_level",
        "stormwatch_target_expected_authors",
        "stormwatch_target_observed_authors",
        "stormwatch_alerts",
        "stormwatch_event_lag_seconds",
        "stormwatch_consumer_lag_messages",
        "stormwatch_inference_duration_seconds",
        "stormwatch_batch_messages",
        "stormwatch_dead_letters",
        "stormwatch_build",
        "stormwatch_model",
    ):
        assert wanted in names


@pytest.mark.parametrize("attr", sorted(METRICS))
def test_name_follows_the_rules(attr: str) -> None:
    metric = METRICS[attr]
    family = exposed_names(metric)[0]
    sample_name = family + {Counter: "_total", Info: "_info"}.get(type(metric), "")
    assert re.fullmatch(r"stormwatch_[a-z][a-z0-9_]*[a-z0-9]", sample_name), sample_name
    assert "__" not in sample_name
    if isinstance(metric, Counter):
        assert sample_name.endswith("_total") and not family.endswith("_total")
    else:
        assert not sample_name.endswith("_total"), "_total is for counters only"
    if isinstance(metric, Info):
        assert sample_name.endswith("_info")
    else:
        assert not sample_name.endswith("_info"), "_info is for metadata only"
    if isinstance(metric, Histogram):
        assert family.endswith(UNITS), f"{family}: a histogram names its base unit"
    if "time" in family or "lag" in family or "duration" in family:
        assert family.endswith(("_seconds", "_messages")), f"{family}: base units"
    assert not re.search(r"_(milliseconds|ms|minutes|hours|percent|kb|mb)(_|$)", family)


@pytest.mark.parametrize("attr", sorted(METRICS))
def test_labels_are_bounded_and_never_personal(attr: str) -> None:
    labels = METRICS[attr]._labelnames
    for label in labels:
        assert re.fullmatch(r"[a-z][a-z_]*", label)
        assert not PERSONAL & set(label.split("_")), f"{attr}: label {label!r}"
    assert len(labels) <= 4


@pytest.mark.parametrize("family", COLLECTED, ids=lambda f: f.name)
def test_collected_gauges_follow_the_same_rules(family: object) -> None:
    name = family.name  # type: ignore[attr-defined]
    assert family.type == "gauge"  # type: ignore[attr-defined]
    assert re.fullmatch(r"stormwatch_target_[a-z][a-z0-9_]*[a-z0-9]", name)
    assert not name.endswith(("_total", "_info")) and name.endswith(UNITS)
    served = metrics._FIGURES_COLLECTOR.collect()
    assert [f.name for f in served] == [f.name for f in COLLECTED]
    for f in served:  # one label, the capped target, and nothing personal
        assert all(set(s.labels) == {"target"} for s in f.samples)


@pytest.mark.parametrize(
    ("topic", "label"),
    [
        ("mentions.raw.v1", "mentions.raw.v1"),
        ("t0123.mentions.raw.v1", "mentions.raw.v1"),
        ("tenant-a.mentions.scored.v1", "mentions.scored.v1"),
        ("alerts.v1", "alerts.v1"),
        ("alerting.detector-state.v1", "alerting.detector-state.v1"),
        ("something.else", "other"),
    ],
)
def test_topic_labels_drop_the_prefix_and_stay_bounded(topic: str, label: str) -> None:
    assert metrics.topic_label(topic) == label


def test_target_labels_are_capped() -> None:
    cap = metrics._TargetLabels(limit=3)
    assert [cap(t) for t in ("a", "b", "a", "c", "d", "e", "b")] == [
        "a",
        "b",
        "a",
        "c",
        "other",
        "other",
        "b",
    ]


def test_redefining_a_metric_reuses_the_registered_one() -> None:
    again = metrics._metric(Gauge, "stormwatch_consumer_lag_messages", "x", ["group", "topic"])
    assert again is metrics.CONSUMER_LAG
    counter = metrics._metric(Counter, "stormwatch_dead_letters", "x", ["service", "topic"])
    assert counter is metrics.DEAD_LETTERS
