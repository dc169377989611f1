"""Delivery metrics. Labels are low-cardinality on purpose: no person or alert ids, so a
storm cannot blow up the time-series database; ``drill`` keeps rehearsals out of SLOs."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NOTIFICATIONS = Counter(
    "stormwatch_alerting_notifications_total",
    "Notification attempts by channel and outcome (sent, failed, retried, suppressed, "
    "duplicate, rate_limited, bundled).",
    ["channel", "outcome", "drill"],
)
SEND_SECONDS = Histogram(
    "stormwatch_alerting_notification_send_seconds",
    "Time to hand one notification to its channel (successful sends).",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ACKNOWLEDGED = Counter(
    "stormwatch_alerting_alerts_acknowledged_total",
    "Alerts acknowledged, by how (link, sms, crisis_room).",
    ["via", "drill"],
)
ESCALATIONS = Counter(
    "stormwatch_alerting_escalations_total",
    "Escalation steps paged because nobody acknowledged in time.",
    ["level", "drill"],
)
OPEN_ALERTS = Gauge(
    "stormwatch_alerting_open_alerts", "Alert groups not yet resolved.", ["status", "drill"]
)


def drill_label(drill: bool) -> str:
    return "true" if drill else "false"
