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


def topic_specs(
    partitions: int = 6, *, mentions_days: int = 30, alerts_days: int = 365
) -> list[TopicSpec]:
    """The topics stormwatch needs, with retention from the privacy defaults.

    Raw and scored mentions hold post texts (possibly health data, GDPR Art. 9), so they are
    kept 30 days; alerts and the audit trail one year; the detector changelog is compacted
    because it is state, not history. Its ``max.compaction.lag.ms`` and ``segment.ms`` bound
    how long a state superseded by an erasure (``stormwatch forget``) stays on disk: without
    them the old record could sit in the active segment, uncompacted, for a week.
    """
    mentions = str(mentions_days * DAY_MS)
    alerts = str(alerts_days * DAY_MS)
    specs = [
        TopicSpec(MENTIONS_RAW, partitions, {"retention.ms": mentions}),
        TopicSpec(MENTIONS_SCORED, partitions, {"retention.ms": mentions}),
        TopicSpec(ALERTS, partitions, {"retention.ms": alerts}),
        TopicSpec(
            DETECTOR_CHANGELOG,
            partitions,
            {
                "cleanup.policy": "compact",
                # full states as JSON, rewritten every flush: compressed by the broker (Java),
                # not by the Python services (see ``PRODUCER_DEFAULTS``)
                "compression.type": "lz4",
                "min.compaction.lag.ms": "60000",
                "max.compaction.lag.ms": str(DAY_MS),
                "segment.ms": str(DAY_MS),
                "delete.retention.ms": str(DAY_MS),
            },
        ),
    ]
    for base in (MENTIONS_RAW, MENTIONS_SCORED, ALERTS):
        specs.append(TopicSpec(dlq(base), 1, {"retention.ms": mentions}))
    for spec in specs:
        # Retention counts from when we stored a record, not from when it was posted: a
        # backfilled old post or a replayed drill must not be deleted on arrival. Event
        # time travels in the payload (``occurred_at``), where the detector reads it.
        spec.config["message.timestamp.type"] = "LogAppendTime"
    return specs
