"""Topic names and their specs.

Topics are versioned in the name (``.v1``): a breaking schema change gets a new topic that
old and new consumers can run side by side during an upgrade. Every topic is keyed by
target id so one target's whole story stays on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MENTIONS_RAW = "mentions.raw.v1"
MENTIONS_SCORED = "mentions.scored.v1"
ALERTS = "alerts.v1"
DETECTOR_CHANGELOG = "alerting.detector-state.v1"

DAY_MS = 24 * 3600 * 1000


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(partitions: int = 6) -> list[TopicSpec]:
    """The topics stormwatch needs, with retention from the privacy defaults.

    Raw and scored mentions hold post texts (possibly health data, GDPR Art. 9), so they are
    kept 30 days; alerts and the audit trail one year; the detector changelog is compacted
    because it is state, not history.
    """
    thirty_days = str(30 * DAY_MS)
    year = str(365 * DAY_MS)
    specs = [
        TopicSpec(MENTIONS_RAW, partitions, {"retention.ms": thirty_days}),
        TopicSpec(MENTIONS_SCORED, partitions, {"retention.ms": thirty_days}),
        TopicSpec(ALERTS, partitions, {"retention.ms": year}),
        TopicSpec(
            DETECTOR_CHANGELOG,
            partitions,
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        ),
    ]
    for base in (MENTIONS_RAW, MENTIONS_SCORED, ALERTS):
        specs.append(TopicSpec(dlq(base), 1, {"retention.ms": thirty_days}))
    return specs
