"""The notification pipeline as pure stages (Alertmanager's model).

plan (group by target, expand a chain step into intents) → suppress (silences, maintenance
windows, quiet hours) → dedup (idempotency key) → rate limit (SMS cost cap) → bundle (one
SMS per person per window) → retry policy and provider failover. The service runs the
stages in this order and does the IO between them; each stage is testable alone because
time, randomness and history are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from stormwatch_alerting.domain.escalation import AlertGroup, ChainStep
from stormwatch_alerting.domain.routing import RoutingConfig

Kind = Literal["raised", "escalated", "step", "resolved", "heads_up", "digest", "bundle"]
PAGER_CHANNELS = frozenset({"sms", "push"})


@dataclass(frozen=True, slots=True)
class Intent:
    """One message to one recipient on one channel; ``recipient`` is a person or chat id."""

    alert_id: str
    target_id: str
    level: str
    kind: Kind
    step: int
    recipient: str
    channel: str
    drill: bool = False

    @property
    def key(self) -> str:
        """Idempotency key: the same alert, level, step, recipient and channel sends once."""
        return "|".join(
            (self.alert_id, self.level, self.kind, str(self.step), self.recipient, self.channel)
        )


def step_intents(group: AlertGroup, step: ChainStep, index: int, kind: Kind) -> list[Intent]:
    """Expand one chain step: every person on every channel, plus broadcasts."""
    out = [
        Intent(group.alert_id, group.target_id, group.level, kind, index, p, c, group.drill)
        for p in step.persons
        for c in step.channels
    ]
    for b in step.broadcast:
        channel = "digest" if b == "digest" else "chat"
        out.append(
            Intent(
                group.alert_id, group.target_id, group.level, kind, index, b, channel, group.drill
            )
        )
    return out


def resolved_intents(group: AlertGroup) -> list[Intent]:
    """Resolved notices go to everyone who was paged, on the quiet channels only.

    An 'all clear' is not worth waking anybody: email and chat, never SMS.
    """
    seen: list[Intent] = []
    for index, step in enumerate(group.chain[: group.step + 1]):
        for intent in step_intents(group, step, index, "resolved"):
            if intent.channel in PAGER_CHANNELS or intent.channel == "digest":
                continue
            if any(i.recipient == intent.recipient and i.channel == intent.channel for i in seen):
                continue
            seen.append(replace(intent, step=0))
    return seen


def heads_up_intents(
    config: RoutingConfig, group: AlertGroup, now: datetime
) -> tuple[list[Intent], str | None]:
    """The ambassador's own heads-up, if they consented; SMS only by day below critical.

    Returns the intents and, when none, why not (for the audit log).
    """
    if group.target_kind != "ambassador":
        return [], None
    amb = config.ambassadors.get(group.target_id)
    if amb is None:
        return [], "no ambassador entry"
    if not amb.consent:
        return [], "no consent"
    person = config.people[amb.person]
    out = []
    for channel in amb.channels:
        if channel == "sms" and group.level != "critical" and config.night(now):
            continue
        if not _reachable(person.email, person.phone, person.ntfy_topic, channel):
            continue
        out.append(
            Intent(
                group.alert_id,
                group.target_id,
                group.level,
                "heads_up",
                0,
                amb.person,
                channel,
                group.drill,
            )
        )
    return out, None


def _reachable(email: str | None, phone: str | None, topic: str | None, channel: str) -> bool:
    return {"email": email, "sms": phone, "push": topic}.get(channel) is not None


# --------------------------------------------------------------------------- suppression


@dataclass(frozen=True, slots=True)
class Silence:
    """A manual mute; empty matchers match everything. Expires on its own."""

    id: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str = ""
    target_id: str | None = None
    alert_id: str | None = None
    max_level: str | None = None
    """Mute up to this level only (e.g. ``warning``) so a critical still gets through."""

    def matches(self, intent: Intent, now: datetime) -> bool:
        if not self.starts_at <= now < self.ends_at:
            return False
        if self.target_id is not None and self.target_id != intent.target_id:
            return False
        if self.alert_id is not None and self.alert_id != intent.alert_id:
            return False
        rank = {"watch": 1, "warning": 2, "critical": 3}
        return self.max_level is None or rank[intent.level] <= rank[self.max_level]


def suppression(
    intent: Intent, config: RoutingConfig, silences: Iterable[Silence], now: datetime
) -> str | None:
    """Why this intent must not be sent now, or None. Resolved notices ignore quiet hours."""
    for s in silences:
        if s.matches(intent, now):
            return f"silenced:{s.id}"
    for w in config.maintenance:
        if (
            w.start <= now < w.end
            and intent.level in w.levels
            and (not w.target_ids or intent.target_id in w.target_ids)
        ):
            return f"maintenance:{w.name}"
    if intent.kind != "resolved" and config.quiet(intent.level, intent.channel, now):
        return "quiet_hours"
    return None


def fresh(intents: Iterable[Intent], sent_keys: Iterable[str]) -> list[Intent]:
    """Drop intents already sent (or queued); also collapses repeats within the batch."""
    seen = set(sent_keys)
    out = []
    for intent in intents:
        if intent.key not in seen:
            seen.add(intent.key)
            out.append(intent)
    return out


# --------------------------------------------------------------------------- SMS cost


def sms_allowed(sent_at: Sequence[datetime], now: datetime, per_hour: int, per_day: int) -> bool:
    """Whether one more SMS stays within both caps (sliding windows)."""
    hour = sum(1 for t in sent_at if now - t < timedelta(hours=1))
    day = sum(1 for t in sent_at if now - t < timedelta(days=1))
    return hour < per_hour and day < per_day


def sms_hold(last_sms_to_person: datetime | None, now: datetime, window: timedelta) -> bool:
    """Hold an SMS for bundling when this person got one within the window.

    The first SMS of a storm goes at once; what follows within the window is collected and
    sent as one text when the window closes, so a storm does not send fifty texts.
    """
    return last_sms_to_person is not None and now - last_sms_to_person < window


def bundle_due(
    held_since: datetime | None, last_sms: datetime | None, now: datetime, window: timedelta
) -> bool:
    if held_since is None:
        return False
    anchor = last_sms if last_sms is not None else held_since
    return now - anchor >= window


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    base_s: float = 1.0
    cap_s: float = 60.0
    max_retry_after_s: float = 300.0


def retry_delay(
    policy: RetryPolicy,
    attempt: int,
    *,
    recoverable: bool,
    retry_after_s: float | None,
    rand: float,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None to give up.

    Exponential backoff with 'equal jitter' (half fixed, half random) so many senders that
    failed together do not retry together; a server's Retry-After wins when it asks for
    longer, up to a bound so a broken header cannot park a page for hours.
    """
    if not recoverable or attempt >= policy.attempts:
        return None
    backoff = min(policy.cap_s, policy.base_s * 2.0 ** (attempt - 1))
    delay = backoff / 2 + backoff / 2 * rand
    if retry_after_s is not None and retry_after_s > 0:
        if retry_after_s > policy.max_retry_after_s:
            return None
        delay = max(delay, retry_after_s)
    return delay


def provider_order(
    providers: Sequence[str], down_until: Mapping[str, datetime], now: datetime
) -> list[str]:
    """Healthy providers first in configured order; ones that failed recently go last.

    A provider in an outage is still tried last rather than skipped: better a slow page
    than none if the other provider fails too.
    """
    healthy = [p for p in providers if down_until.get(p, now) <= now]
    return healthy + [p for p in providers if p not in healthy]


def digest_due(
    last_sent: datetime | None, oldest_pending: datetime | None, now: datetime, interval: timedelta
) -> bool:
    if oldest_pending is None:
        return False
    anchor = last_sent if last_sent is not None else oldest_pending
    return now - anchor >= interval
