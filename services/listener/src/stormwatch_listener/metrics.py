"""Prometheus metrics of the listener, one set per source (label ``source`` only).

Never an author, mention or target id as a label: those are unbounded, and author ids are
personal data. The shared HTTP server (``stormwatch_shared.observability``) exposes the
default registry these live in.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECEIVED = Counter(
    "stormwatch_listener_received_total",
    "Raw posts received from the source (keep-alives not counted).",
    ["source"],
)
PUBLISHED = Counter(
    "stormwatch_listener_published_total",
    "Mentions written to Kafka and acknowledged by it.",
    ["source"],
)
ERRORS = Counter(
    "stormwatch_listener_errors_total",
    "Failures: connection and HTTP errors, malformed payloads, enrichment failures.",
    ["source"],
)
DEAD_LETTERS = Counter(
    "stormwatch_listener_dead_letters_total",
    "Malformed payloads written to mentions.raw.v1.dlq.",
    ["source"],
)
DUPLICATES = Counter(
    "stormwatch_listener_duplicates_total",
    "Posts dropped because they were already published (seen-set).",
    ["source"],
)
RECONNECTS = Counter(
    "stormwatch_listener_reconnects_total",
    "Reconnects after an error, a closed stream or the no-data watchdog.",
    ["source"],
)
LAG = Gauge(
    "stormwatch_listener_lag_seconds",
    "Now minus the created time of the last published mention.",
    ["source"],
)
BUDGET_USED = Gauge(
    "stormwatch_listener_budget_used",
    "Posts read this calendar month (pay-per-use APIs).",
    ["source"],
)
BUDGET_LIMIT = Gauge(
    "stormwatch_listener_budget_limit",
    "Monthly read budget (0 = none enforced).",
    ["source"],
)
BUDGET_EXHAUSTED = Gauge(
    "stormwatch_listener_budget_exhausted",
    "1 while the monthly read budget is used up and the source is paused.",
    ["source"],
)
