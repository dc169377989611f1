"""The delivery stage as the alerting app sees it: one object with start/stop/handle.

Without a routing file it does what it always did (log + one email to ALERTING_EMAIL_TO per
alert event). With one, it runs the notify pipeline: group by target → silence, maintenance
and quiet hours → dedup on an idempotency key → SMS bundling and cost cap → send with retry,
jittered backoff, Retry-After and provider failover → audit → resolved notices, plus
escalation timers and acknowledgements. The pure stages live in ``domain/``; this module
does the IO between them and keeps state in SQLite so a restart neither re-pages nor
forgets an escalation. Sends run in background tasks: a slow SMTP server never holds up
the Kafka consumer, and a step nobody could be reached on escalates at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from stormwatch_shared.events import CrisisAlertRaised, CrisisAlertResolved
from stormwatch_shared.settings import RetentionSettings, load_settings, secret_file_values

from stormwatch_alerting.delivery import messages, metrics
from stormwatch_alerting.delivery.channels import (
    AlertmanagerSink,
    ChatWebhook,
    EmailSender,
    GrafanaAnnotations,
    HttpSms,
    NtfyPush,
    Outbound,
    Sender,
    TwilioSms,
)
from stormwatch_alerting.delivery.notifiers import (
    EmailNotifier,
    LogNotifier,
    Notifier,
    NotifyError,
)
from stormwatch_alerting.delivery.settings import DeliverySettings
from stormwatch_alerting.delivery.store import Store
from stormwatch_alerting.domain import escalation as esc
from stormwatch_alerting.domain.ack import AckTokenError, parse_reply, sign_ack, verify_ack
from stormwatch_alerting.domain.escalation import AlertGroup, TransitionError
from stormwatch_alerting.domain.notify import (
    Intent,
    RetryPolicy,
    Silence,
    bundle_due,
    digest_due,
    heads_up_intents,
    provider_order,
    resolved_intents,
    retry_delay,
    sms_allowed,
    sms_hold,
    step_intents,
    suppression,
)
from stormwatch_alerting.domain.routing import RoutingConfig, parse_routing
from stormwatch_alerting.settings import AlertingSettings

log = logging.getLogger("stormwatch.alerting.delivery")

PERSON_CHANNELS = ("email", "sms", "push")


async def deliver(
    alert: Any, notifiers: list[Notifier], *, attempts: int = 3, backoff_s: float = 0.5
) -> dict[str, str]:
    """Send to every channel; retry only recoverable failures, with exponential backoff.

    One failing channel must not keep the others from paging: each is tried on its own.
    """
    outcomes: dict[str, str] = {}
    for notifier in notifiers:
        for attempt in range(1, attempts + 1):
            try:
                outcomes[notifier.channel] = "sent: " + await notifier.send(alert)
                break
            except NotifyError as exc:
                if not exc.recoverable or attempt == attempts:
                    outcomes[notifier.channel] = f"failed: {exc}"
                    log.error(
                        "Zustellung fehlgeschlagen / delivery failed (%s, attempt %d): %s",
                        notifier.channel,
                        attempt,
                        exc,
                    )
                    break
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
    return outcomes


def load_routing(path: Path) -> RoutingConfig:
    """Read and validate the routing file; errors name the file and the entry."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read routing file: {exc}") from exc
    try:
        return parse_routing(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Delivery:
    def __init__(
        self,
        settings: AlertingSettings,
        notifiers: list[Notifier] | None = None,
        *,
        delivery_settings: DeliverySettings | None = None,
        routing: RoutingConfig | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.ds = (
            delivery_settings
            if delivery_settings is not None
            else DeliverySettings(**secret_file_values(DeliverySettings))
        )
        self.retention = load_settings(RetentionSettings)
        self.clock, self.sleep, self.rand = clock, sleep, rand
        if routing is None and notifiers is None and self.ds.routing_file is not None:
            routing = load_routing(self.ds.routing_file)
        self.config = routing
        self.legacy = routing is None
        if notifiers is None:
            notifiers = [LogNotifier(log)]
            if settings.email_to:
                notifiers.append(EmailNotifier(settings))
        self.notifiers = notifiers
        secret = self.ds.ack_secret.get_secret_value() if self.ds.ack_secret else ""
        if not secret and not self.legacy:
            log.warning(
                "ALERTING_ACK_SECRET fehlt / missing: acknowledge links stop working at restart"
            )
            secret = secrets.token_urlsafe(32)
        self.ack_secret = secret.encode()
        self.public_url = (self.ds.public_url or settings.crisis_room_url).rstrip("/")
        self.policy = RetryPolicy(
            attempts=self.ds.retry_attempts, base_s=self.ds.retry_base_s, cap_s=self.ds.retry_cap_s
        )
        self._store: Store | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tick_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._provider_down: dict[str, datetime] = {}
        self.email: Sender | None = None
        self.sms: list[Sender] = []
        self.push: Sender | None = None
        self.chat: dict[str, Sender] = {}
        self.alertmanager: Sender | None = None
        self.grafana: Sender | None = None
        self.web: Any = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("Delivery.start() was not called")
        return self._store

    @property
    def routing(self) -> RoutingConfig:
        assert self.config is not None
        return self.config

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the store, build channels, resume unsent work, start timers and the web page."""
        if self.legacy:
            return
        ds = self.ds
        if ds.state_db is None:
            log.warning("ALERTING_STATE_DB fehlt / missing: state kept in memory only")
        self._store = Store(ds.state_db)
        self._purge()
        self._http = httpx.AsyncClient(timeout=ds.send_timeout_s)
        self._build_senders()
        pending = self.store.outbox("pending")
        if pending:
            log.warning("%d unbestätigte Sendungen / unconfirmed sends resumed", len(pending))
            self._spawn(self._dispatch([(oid, intent) for oid, intent, _ in pending]))
        self._tick_task = asyncio.create_task(self._tick_loop())
        enabled = ds.web_enabled if ds.web_enabled is not None else True
        if enabled:
            from stormwatch_alerting.web.app import start_web

            self.web = await start_web(self, ds)

    async def stop(self) -> None:
        """Let in-flight sends finish briefly, then close everything."""
        if self._tick_task is not None:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
            self._tick_task = None
        if self._tasks:
            _, still = await asyncio.wait(set(self._tasks), timeout=5)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        if self.web is not None:
            await self.web.cleanup()
            self.web = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def _build_senders(self) -> None:
        ds, http = self.ds, self._http
        assert http is not None
        self.email = EmailSender(self.settings)
        for name in ds.sms_providers:
            if name == "twilio" and ds.twilio_account_sid and ds.twilio_auth_token:
                self.sms.append(
                    TwilioSms(
                        ds.twilio_account_sid,
                        ds.twilio_auth_token.get_secret_value(),
                        ds.twilio_from or "",
                        base_url=ds.twilio_base_url,
                        status_callback=f"{self.public_url}/webhooks/twilio/status",
                        timeout=ds.send_timeout_s,
                    )
                )
            elif name == "http" and ds.http_sms_url and ds.http_sms_api_key:
                self.sms.append(
                    HttpSms(
                        http,
                        ds.http_sms_url,
                        ds.http_sms_api_key.get_secret_value(),
                        ds.http_sms_from,
                    )
                )
        if ds.ntfy_url:
            token = ds.ntfy_token.get_secret_value() if ds.ntfy_token else None
            self.push = NtfyPush(http, ds.ntfy_url, token)
        for cid, target in self.routing.chat.items():
            url = target.url or os.environ.get(target.url_env or "", "")
            if url:
                self.chat[cid] = ChatWebhook(http, target.kind, url)
            else:
                log.error("Chat %s: %s ist leer / is empty", cid, target.url_env)
        if ds.alertmanager_url:
            self.alertmanager = AlertmanagerSink(http, ds.alertmanager_url)
        if ds.grafana_url:
            token = ds.grafana_token.get_secret_value() if ds.grafana_token else None
            self.grafana = GrafanaAnnotations(http, ds.grafana_url, token)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for background sends (tests, shutdown, the drill command)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    # ------------------------------------------------------------------ alerts in
    async def handle(self, alert: Any) -> dict[str, str]:
        """Deliver one alert event (already deduplicated by event id in memory)."""
        if self.legacy:
            return await deliver(alert, self.notifiers)
        store, cfg, now = self.store, self.routing, self.clock()
        if not store.first_time_event(alert.event_id, now):
            metrics.NOTIFICATIONS.labels(
                "event", "duplicate", metrics.drill_label(alert.drill)
            ).inc()
            return {"event": "duplicate"}
        payload = alert.model_dump(mode="json")
        group = store.group(alert.alert_id)
        if isinstance(alert, CrisisAlertResolved):
            store.save_event(
                alert.alert_id,
                {**(store.event(alert.alert_id) or payload), "resolved_at": payload["occurred_at"]},
            )
            if group is None or not group.open:
                store.audit(now, "resolved_unknown", alert_id=alert.alert_id, drill=alert.drill)
                return {"event": "no open alert"}
            group = esc.resolve(group, now)
            store.save_group(group)
            store.audit(now, "resolved", alert_id=group.alert_id, drill=group.drill)
            result = self._submit(group, resolved_intents(group), now)
            self._sinks(group, resolved=True, now=now)
            self._gauges()
            return result
        store.save_event(alert.alert_id, payload)
        route = cfg.route_for(alert.target_id, alert.target_kind or "organisation", alert.level)
        if route is None:
            store.audit(
                now, "unrouted", alert_id=alert.alert_id, detail=alert.level, drill=alert.drill
            )
            log.error("Keine Route / no route for %s %s", alert.target_id, alert.level)
            return {"event": "unrouted"}
        chain = esc.snapshot(cfg, route, now)
        opened = group is None or not group.open
        if opened:
            group = esc.open_group(
                alert_id=alert.alert_id,
                target_id=alert.target_id,
                target_name=alert.target_name,
                target_kind=alert.target_kind or "organisation",
                level=alert.level,
                drill=alert.drill,
                route=route,
                chain=chain,
                now=now,
                ack_code=self._new_code(),
            )
            kind = "raised" if isinstance(alert, CrisisAlertRaised) else "escalated"
        else:
            assert group is not None
            raised = esc.raise_level(group, alert.level, route, chain, now)
            if raised is group:
                store.audit(now, "level_unchanged", alert_id=group.alert_id, drill=group.drill)
                return {"event": "unchanged"}
            group, kind = raised, "escalated"
        store.save_group(group)
        store.audit(
            now,
            kind,
            alert_id=group.alert_id,
            detail=f"{group.level} via {route.name}",
            drill=group.drill,
        )
        intents = step_intents(group, group.chain[0], 0, kind)  # type: ignore[arg-type]
        heads_up, why_not = heads_up_intents(cfg, group, now)
        if why_not:
            store.audit(
                now, "heads_up_skipped", alert_id=group.alert_id, detail=why_not, drill=group.drill
            )
        result = self._submit(group, intents + heads_up, now)
        self._sinks(group, resolved=False, now=now, annotate=opened)
        self._gauges()
        return result

    def _new_code(self) -> str:
        for _ in range(100):
            code = f"{secrets.randbelow(9000) + 1000}"
            if self.store.group_by_code(code) is None:
                return code
        return secrets.token_hex(4).upper()

    # ------------------------------------------------------------------ pipeline
    def _submit(self, group: AlertGroup, intents: list[Intent], now: datetime) -> dict[str, str]:
        """Suppress, dedup, hold for bundling; what remains is sent in the background."""
        store, cfg = self.store, self.routing
        silences = store.silences(now)
        out: dict[str, str] = {}
        ready: list[tuple[int, Intent]] = []
        for intent in intents:
            drill = metrics.drill_label(intent.drill)
            reason = suppression(intent, cfg, silences, now)
            if reason:
                out[intent.key] = reason
                self._audit_intent(now, intent, "suppressed", detail=reason)
                metrics.NOTIFICATIONS.labels(intent.channel, "suppressed", drill).inc()
                continue
            if not store.claim(intent.key, now):
                out[intent.key] = "duplicate"
                metrics.NOTIFICATIONS.labels(intent.channel, "duplicate", drill).inc()
                continue
            if intent.channel == "digest":
                store.enqueue(intent, "digest", now)
                out[intent.key] = "digest"
                continue
            if intent.channel == "sms" and intent.kind != "heads_up":
                recent = store.sms_times(now - cfg.sms_bundle_window, intent.recipient)
                if sms_hold(max(recent, default=None), now, cfg.sms_bundle_window):
                    store.enqueue(intent, "held", now)
                    out[intent.key] = "held"
                    self._audit_intent(now, intent, "held_for_bundle")
                    metrics.NOTIFICATIONS.labels("sms", "bundled", drill).inc()
                    continue
            ready.append((store.enqueue(intent, "pending", now), intent))
            out[intent.key] = "queued"
        # An SMS batch for one person: first goes now, the rest joins the next bundle. The
        # SMS is counted when queued, not when sent, so a burst sees its own earlier texts.
        first_sms: set[str] = set()
        kept: list[tuple[int, Intent]] = []
        for oid, intent in ready:
            if intent.channel == "sms":
                if intent.kind != "heads_up" and intent.recipient in first_sms:
                    store.set_state([oid], "held")
                    out[intent.key] = "held"
                    continue
                if not self._sms_budget(now, intent):
                    store.set_state([oid], "rate_limited")
                    out[intent.key] = "rate_limited"
                    continue
                first_sms.add(intent.recipient)
                store.log_sms(intent.recipient, now)
            kept.append((oid, intent))
        if kept:
            self._spawn(self._dispatch(kept))
        return out

    async def _dispatch(self, items: list[tuple[int, Intent]]) -> None:
        results = await asyncio.gather(
            *(self._deliver(oid, intent) for oid, intent in items), return_exceptions=True
        )
        by_alert: dict[str, list[bool]] = {}
        for (_, intent), ok in zip(items, results, strict=True):
            if isinstance(ok, BaseException):
                log.error("Zustellung abgebrochen / send crashed: %r", ok)
                ok = False
            if intent.channel in PERSON_CHANNELS and intent.kind in ("raised", "escalated", "step"):
                by_alert.setdefault(intent.alert_id, []).append(bool(ok))
        now = self.clock()
        for alert_id, oks in by_alert.items():
            if any(oks):
                continue
            group = self.store.group(alert_id)
            if group is None:
                continue
            moved = esc.escalate_now(group, now)
            if moved is not group:
                self.store.save_group(moved)
                self.store.audit(
                    now,
                    "escalate_early",
                    alert_id=alert_id,
                    drill=group.drill,
                    detail="niemand erreicht / nobody reached on this step",
                )
                self._wake.set()

    async def _deliver(self, oid: int, intent: Intent) -> bool:
        store, now = self.store, self.clock()
        group = store.group(intent.alert_id)
        payload = store.event(intent.alert_id)
        if group is None or payload is None:
            store.set_state([oid], "failed")
            return False
        if intent.kind == "step" and group.status in ("acknowledged", "resolved"):
            store.set_state([oid], "dropped")
            self._audit_intent(now, intent, "dropped", detail=f"alert {group.status}")
            return False
        composed = self._compose(intent, group, messages.event_from_payload(payload))
        if composed is None:
            store.set_state([oid], "failed")
            self._audit_intent(
                now, intent, "failed", detail="keine Adresse / no address or channel"
            )
            metrics.NOTIFICATIONS.labels(
                intent.channel, "failed", metrics.drill_label(intent.drill)
            ).inc()
            return False
        msg, senders = composed
        ok = await self._send(intent, msg, senders)
        store.set_state([oid], "done" if ok else "failed")
        return ok

    def _sms_budget(self, now: datetime, intent: Intent) -> bool:
        cap = self.routing.sms_cap
        if sms_allowed(
            self.store.sms_times(now - timedelta(days=1)), now, cap.per_hour, cap.per_day
        ):
            return True
        self._audit_intent(
            now, intent, "rate_limited", detail=f"SMS-Limit / cap {cap.per_hour}/h {cap.per_day}/d"
        )
        metrics.NOTIFICATIONS.labels("sms", "rate_limited", metrics.drill_label(intent.drill)).inc()
        log.error("SMS-Kostenlimit erreicht / SMS cost cap reached")
        return False

    async def _send(self, intent: Intent, msg: Outbound, senders: list[Sender]) -> bool:
        """Retry each provider with jittered backoff, then fail over to the next one."""
        drill = metrics.drill_label(intent.drill)
        names = provider_order([s.name for s in senders], self._provider_down, self.clock())
        ordered = sorted(senders, key=lambda s: names.index(s.name))
        loop = asyncio.get_running_loop()
        for n, sender in enumerate(ordered):
            attempt = 1
            while True:
                started = loop.time()
                try:
                    pid = await asyncio.wait_for(sender.send(msg), self.ds.send_timeout_s)
                except (NotifyError, TimeoutError) as exc:
                    err = (
                        exc
                        if isinstance(exc, NotifyError)
                        else NotifyError(
                            f"timeout after {self.ds.send_timeout_s}s", recoverable=True
                        )
                    )
                    delay = retry_delay(
                        self.policy,
                        attempt,
                        recoverable=err.recoverable,
                        retry_after_s=err.retry_after,
                        rand=self.rand(),
                    )
                    outcome = "retry" if delay is not None else "failed"
                    self._audit_intent(
                        self.clock(),
                        intent,
                        outcome,
                        provider=sender.name,
                        detail=f"attempt {attempt}: {err}",
                    )
                    metrics.NOTIFICATIONS.labels(intent.channel, outcome, drill).inc()
                    if delay is None:
                        break
                    await self.sleep(delay)
                    attempt += 1
                    continue
                except Exception as exc:  # a bug in one adapter must not kill the batch
                    log.exception("Kanal-Fehler / channel crashed: %s", sender.name)
                    self._audit_intent(
                        self.clock(), intent, "failed", provider=sender.name, detail=repr(exc)
                    )
                    metrics.NOTIFICATIONS.labels(intent.channel, "failed", drill).inc()
                    break
                metrics.SEND_SECONDS.labels(intent.channel).observe(loop.time() - started)
                metrics.NOTIFICATIONS.labels(intent.channel, "sent", drill).inc()
                self._audit_intent(
                    self.clock(),
                    intent,
                    "sent",
                    provider=sender.name,
                    provider_id=pid,
                    detail=f"attempt {attempt}",
                )
                self._provider_down.pop(sender.name, None)
                return True
            if len(ordered) > 1:
                self._provider_down[sender.name] = self.clock() + timedelta(
                    seconds=self.ds.provider_down_s
                )
                if n + 1 < len(ordered):
                    self._audit_intent(
                        self.clock(),
                        intent,
                        "failover",
                        provider=sender.name,
                        detail=f"-> {ordered[n + 1].name}",
                    )
        return False

    def _audit_intent(self, at: datetime, intent: Intent, outcome: str, **kw: Any) -> None:
        detail = kw.pop("detail", None)
        self.store.audit(
            at,
            "notify",
            alert_id=intent.alert_id,
            channel=intent.channel,
            recipient=intent.recipient,
            outcome=outcome,
            drill=intent.drill,
            detail=f"{intent.kind}: {detail}" if detail else intent.kind,
            **kw,
        )

    # ------------------------------------------------------------------ composing
    def room_url(self, alert_id: str) -> str:
        return f"{self.public_url}/alerts/{alert_id}"

    def ack_url(self, alert_id: str, person: str) -> str:
        expires = self.clock() + timedelta(minutes=self.ds.ack_link_ttl_minutes)
        token = sign_ack(self.ack_secret, alert_id, person, expires, secrets.token_urlsafe(9))
        return f"{self.public_url}/ack/{token}"

    def _compose(
        self, intent: Intent, group: AlertGroup, event: Any
    ) -> tuple[Outbound, list[Sender]] | None:
        cfg, kind = self.routing, intent.kind
        room = self.room_url(group.alert_id)
        drill = group.drill
        mid = f"<{hashlib.sha256(intent.key.encode()).hexdigest()[:32]}@stormwatch>"
        if intent.channel == "chat":
            sender = self.chat.get(intent.recipient)
            if sender is None:
                return None
            text = messages.chat(group, event, kind=kind, room_url=room)
            title = text.split(";")[0]
            return Outbound("chat", intent.recipient, title, text, view_url=room, drill=drill), [
                sender
            ]
        person = cfg.people.get(intent.recipient)
        if person is None:
            return None
        ack = (
            self.ack_url(group.alert_id, person.id)
            if group.needs_ack and kind in ("raised", "escalated", "step")
            else None
        )
        if kind == "heads_up":
            amb = cfg.ambassadors[group.target_id]
            contacts = cfg.resolve((amb.contact,), group.opened_at)
            contact = cfg.people[contacts[0]] if contacts else None
            mail, sms_text, push_title = messages.heads_up(
                person.language,
                person.name.split()[0],
                event,
                drill=drill,
                contact=contact.name if contact else "Unternehmenskommunikation",
                contact_phone=contact.phone if contact else None,
                guideline_url=amb.guideline_url,
            )
            if intent.channel == "email" and person.email and self.email:
                return Outbound(
                    "email",
                    person.email,
                    mail.subject,
                    mail.text,
                    mail.html,
                    message_id=mid,
                    drill=drill,
                ), [self.email]
            if intent.channel == "sms" and person.phone and self.sms:
                return Outbound("sms", person.phone, "", sms_text, drill=drill), self.sms
            if intent.channel == "push" and person.ntfy_topic and self.push:
                return Outbound(
                    "push", person.ntfy_topic, push_title, sms_text, drill=drill, priority=3
                ), [self.push]
            return None
        if intent.channel == "email" and person.email and self.email:
            mail = messages.team_email(
                group, event, kind=kind, step=intent.step, room_url=room, ack_url=ack
            )
            return Outbound(
                "email",
                person.email,
                mail.subject,
                mail.text,
                mail.html,
                ack_url=ack,
                view_url=room,
                message_id=mid,
                drill=drill,
            ), [self.email]
        if intent.channel == "sms" and person.phone and self.sms:
            text = messages.sms(group, event, kind=kind, link=None)
            return Outbound("sms", person.phone, "", text, drill=drill), self.sms
        if intent.channel == "push" and person.ntfy_topic and self.push:
            title, text = messages.push(group, event, kind=kind)
            priority = {"watch": 3, "warning": 4, "critical": 5}[group.level]
            return Outbound(
                "push",
                person.ntfy_topic,
                title,
                text,
                ack_url=ack,
                view_url=room,
                priority=priority,
                drill=drill,
            ), [self.push]
        return None

    # ------------------------------------------------------------------ sinks
    def _sinks(
        self, group: AlertGroup, *, resolved: bool, now: datetime, annotate: bool = True
    ) -> None:
        payload = self.store.event(group.alert_id) or {}
        if self.alertmanager is not None:
            self._spawn(
                self._sink_send(
                    group, self.alertmanager, self._am_alert(group, payload, resolved, now)
                )
            )
            self.store.put(f"am:{group.alert_id}", now.isoformat())
        if self.grafana is not None and (annotate or resolved):
            drill_tag = ["drill"] if group.drill else []
            text = (
                f"Entwarnung / resolved: {group.target_name or group.target_id}"
                if resolved
                else f"{messages.LEVEL_DE[group.level]}: {group.target_name or group.target_id}"
            )
            annotation = {
                "time": int(now.timestamp() * 1000),
                "tags": ["stormwatch", group.level, group.target_id, *drill_tag],
                "text": (f"[{messages.DRILL}] " if group.drill else "") + text,
            }
            self._spawn(self._sink_send(group, self.grafana, annotation))

    def _am_alert(
        self, group: AlertGroup, payload: dict[str, Any], resolved: bool, now: datetime
    ) -> dict[str, Any]:
        ends = now if resolved else now + timedelta(seconds=self.ds.alertmanager_resend_s * 4)
        evidence = payload.get("evidence") or {}
        return {
            "labels": {
                "alertname": "StormwatchCrisis",
                "target": group.target_id,
                "severity": group.level,
                "drill": metrics.drill_label(group.drill),
                "alert_id": group.alert_id,
            },
            "annotations": {
                "summary": (f"[{messages.DRILL}] " if group.drill else "")
                + f"{messages.LEVEL_DE[group.level]}: {group.target_name or group.target_id}",
                "description": f"observed {evidence.get('observed', 0):.0f} vs expected "
                f"{evidence.get('expected', 0):.1f}",
            },
            "startsAt": group.opened_at.isoformat(),
            "endsAt": ends.isoformat(),
            "generatorURL": self.room_url(group.alert_id),
        }

    async def _sink_send(self, group: AlertGroup, sender: Sender, extra: dict[str, Any]) -> None:
        intent = Intent(
            group.alert_id,
            group.target_id,
            group.level,
            "raised",
            0,
            "-",
            sender.channel,
            group.drill,
        )
        msg = Outbound(sender.channel, "-", "", "", extra=extra, drill=group.drill)
        await self._send(intent, msg, [sender])

    # ------------------------------------------------------------------ timers
    async def _tick_loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("Eskalations-Takt fehlgeschlagen / escalation tick failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.ds.tick_s)

    def _purge(self) -> None:
        """Apply the retention periods to the state database (at start, then daily)."""
        r = self.retention
        counts = self.store.purge(
            self.clock(),
            alerts_days=r.alerts_days,
            audit_days=r.audit_days,
            texts_days=r.texts_days,
        )
        if any(counts.values()):
            log.info("Aufbewahrungsfristen angewendet / retention applied: %s", counts)

    async def tick(self) -> None:
        """Escalate what is due, flush SMS bundles and the digest, re-send to Alertmanager."""
        store, now = self.store, self.clock()
        if store.purge_due(now):
            self._purge()
        for group in store.open_groups():
            if esc.due(group, now):
                moved, step = esc.advance(group, now)
                store.save_group(moved)
                if step is None:
                    store.audit(now, "chain_exhausted", alert_id=group.alert_id, drill=group.drill)
                    continue
                metrics.ESCALATIONS.labels(group.level, metrics.drill_label(group.drill)).inc()
                store.audit(
                    now,
                    "escalation_step",
                    alert_id=group.alert_id,
                    drill=group.drill,
                    detail=f"step {moved.step + 1}: {', '.join(step.persons)}",
                )
                self._submit(moved, step_intents(moved, step, moved.step, "step"), now)
            if self.alertmanager is not None:
                last = store.get(f"am:{group.alert_id}")
                if last is None or now - datetime.fromisoformat(last) >= timedelta(
                    seconds=self.ds.alertmanager_resend_s
                ):
                    self._sinks(group, resolved=False, now=now, annotate=False)
        await self._flush_bundles(now)
        await self._flush_digest(now)
        self._gauges()

    async def _flush_bundles(self, now: datetime) -> None:
        store, cfg = self.store, self.routing
        held: dict[str, list[tuple[int, Intent, datetime]]] = {}
        for row in store.outbox("held"):
            held.setdefault(row[1].recipient, []).append(row)
        for person_id, rows in held.items():
            last = max(store.sms_times(now - timedelta(days=1), person_id), default=None)
            if not bundle_due(min(r[2] for r in rows), last, now, cfg.sms_bundle_window):
                continue
            live, dropped = [], []
            for oid, intent, _ in rows:
                group = store.group(intent.alert_id)
                still = group is not None and group.status in ("firing", "silenced")
                (live if still else dropped).append((oid, intent, group))
            store.set_state([oid for oid, _, _ in dropped], "dropped")
            if not live:
                continue
            items: list[tuple[AlertGroup, Any]] = []
            for _, intent, group in live:
                payload = store.event(intent.alert_id)
                if (
                    group is not None
                    and payload is not None
                    and all(g.alert_id != group.alert_id for g, _ in items)
                ):
                    items.append((group, messages.event_from_payload(payload)))
            person = cfg.people.get(person_id)
            first = live[0][1]
            bundle = Intent(
                first.alert_id,
                first.target_id,
                first.level,
                "bundle",
                len(live),
                person_id,
                "sms",
                first.drill,
            )
            store.set_state([oid for oid, _, _ in live], "bundled")
            if person is None or not person.phone or not self.sms or not items:
                continue
            text = (
                messages.sms(items[0][0], items[0][1], kind=first.kind, link=None)
                if len(items) == 1
                else messages.sms_bundle(items, None)
            )
            if not self._sms_budget(now, bundle):
                continue
            store.log_sms(person_id, now)
            await self._send(
                bundle, Outbound("sms", person.phone, "", text, drill=first.drill), self.sms
            )

    async def _flush_digest(self, now: datetime) -> None:
        store, cfg = self.store, self.routing
        rows = store.outbox("digest")
        last = store.get("digest_last")
        if not digest_due(
            datetime.fromisoformat(last) if last else None,
            min((r[2] for r in rows), default=None),
            now,
            cfg.digest_interval,
        ):
            return
        items: list[tuple[AlertGroup, Any]] = []
        for _, intent, _ in rows:
            group, payload = store.group(intent.alert_id), store.event(intent.alert_id)
            if group and payload and all(g.alert_id != group.alert_id for g, _ in items):
                items.append((group, messages.event_from_payload(payload)))
        store.set_state([r[0] for r in rows], "done")
        store.put("digest_last", now.isoformat())
        if not items or self.email is None:
            return
        text = messages.digest(items, self.public_url)
        for pid in cfg.resolve(cfg.digest_recipients, now):
            person = cfg.people[pid]
            if not person.email:
                continue
            intent = Intent(
                items[0][0].alert_id,
                items[0][0].target_id,
                "watch",
                "digest",
                len(items),
                pid,
                "email",
                items[0][0].drill,
            )
            msg = Outbound(
                "email", person.email, text.subject, text.text, text.html, drill=intent.drill
            )
            await self._send(intent, msg, [self.email])

    def _gauges(self) -> None:
        counts: dict[tuple[str, str], int] = {}
        for group in self.store.open_groups():
            key = (group.status, metrics.drill_label(group.drill))
            counts[key] = counts.get(key, 0) + 1
        for status in ("firing", "acknowledged", "silenced"):
            for drill in ("true", "false"):
                metrics.OPEN_ALERTS.labels(status, drill).set(counts.get((status, drill), 0))

    # ------------------------------------------------------------------ humans
    def acknowledge(self, alert_id: str, by: str, via: str) -> AlertGroup:
        store, now = self.store, self.clock()
        group = store.group(alert_id)
        if group is None:
            raise KeyError(alert_id)
        acked = esc.acknowledge(group, by, now)
        store.save_group(acked)
        metrics.ACKNOWLEDGED.labels(via, metrics.drill_label(group.drill)).inc()
        store.audit(
            now,
            "acknowledged",
            alert_id=alert_id,
            actor=by,
            channel=via,
            detail=f"after {(now - group.opened_at).total_seconds():.0f}s",
            drill=group.drill,
        )
        self._gauges()
        return acked

    def ack_with_token(self, token: str) -> AlertGroup:
        """One-click link: valid signature, not expired, not used before."""
        now = self.clock()
        try:
            claims = verify_ack(self.ack_secret, token, now)
        except AckTokenError as exc:
            self.store.audit(now, "ack_link_refused", detail=str(exc))
            raise
        if not self.store.use_nonce(claims.nonce, now):
            self.store.audit(
                now,
                "ack_link_refused",
                alert_id=claims.alert_id,
                actor=claims.person,
                detail="link already used",
            )
            raise AckTokenError("link already used")
        return self.acknowledge(claims.alert_id, claims.person, "link")

    def ack_by_sms(self, phone: str, body: str) -> list[str]:
        """An SMS reply: 'OK 4821' acknowledges that alert, 'OK' all the sender was paged for."""
        store, cfg, now = self.store, self.routing, self.clock()
        person = next((p for p in cfg.people.values() if p.phone == phone), None)
        is_ack, code = parse_reply(body)
        if person is None or not is_ack:
            store.audit(
                now,
                "sms_reply_ignored",
                actor=person.id if person else "unknown",
                detail="unknown sender" if person is None else "no keyword",
            )
            return []
        if code:
            group = store.group_by_code(code)
            groups = [group] if group is not None else []
        else:
            groups = [
                g
                for g in store.open_groups()
                if g.status == "firing"
                and any(person.id in s.persons for s in g.chain[: g.step + 1])
            ]
        done = []
        for group in groups:
            try:
                self.acknowledge(group.alert_id, person.id, "sms")
                done.append(group.alert_id)
            except TransitionError as exc:
                store.audit(
                    now, "ack_refused", alert_id=group.alert_id, actor=person.id, detail=str(exc)
                )
        return done

    def resolve_manually(self, alert_id: str, by: str) -> AlertGroup:
        store, now = self.store, self.clock()
        group = store.group(alert_id)
        if group is None:
            raise KeyError(alert_id)
        if not group.open:
            raise TransitionError("alert already resolved")
        done = esc.resolve(group, now)
        store.save_group(done)
        store.audit(now, "resolved_manually", alert_id=alert_id, actor=by, drill=group.drill)
        self._submit(done, resolved_intents(done), now)
        self._sinks(done, resolved=True, now=now)
        self._gauges()
        return done

    def add_silence(
        self,
        by: str,
        *,
        minutes: int,
        comment: str = "",
        target_id: str | None = None,
        alert_id: str | None = None,
        max_level: str | None = None,
    ) -> Silence:
        now = self.clock()
        silence = Silence(
            secrets.token_hex(6),
            now,
            now + timedelta(minutes=minutes),
            by,
            comment,
            target_id,
            alert_id,
            max_level,
        )
        self.store.save_silence(silence)
        self.store.audit(
            now,
            "silence_added",
            alert_id=alert_id,
            actor=by,
            detail=f"{silence.id} until {silence.ends_at:%Y-%m-%d %H:%M} UTC "
            f"target={target_id} max_level={max_level}: {comment}",
        )
        if alert_id:
            group = self.store.group(alert_id)
            if group is not None and group.status == "firing":
                self.store.save_group(esc.silence_group(group, silence.ends_at, now))
        return silence

    def provider_status(self, provider_id: str, status: str, error: str | None) -> None:
        """A delivery receipt (Twilio status callback): failed texts escalate at once."""
        now = self.clock()
        found = self.store.alert_for_provider_id(provider_id)
        alert_id, drill = found if found else (None, False)
        self.store.audit(
            now,
            "provider_status",
            alert_id=alert_id,
            channel="sms",
            outcome=status,
            provider_id=provider_id,
            detail=error,
            drill=drill,
        )
        if alert_id and status in ("failed", "undelivered"):
            group = self.store.group(alert_id)
            if group is not None:
                moved = esc.escalate_now(group, now)
                if moved is not group:
                    self.store.save_group(moved)
                    self._wake.set()

    def drill_report(self) -> dict[str, Any]:
        """Who was paged when, and who acknowledged after how long, per drill alert."""
        report = []
        for group in self.store.all_groups(drill=True):
            rows = self.store.audit_rows(group.alert_id)
            pages = [
                {
                    "at": r["at"],
                    "who": r["recipient"],
                    "channel": r["channel"],
                    "provider": r["provider"],
                }
                for r in rows
                if r["action"] == "notify" and r["outcome"] == "sent"
            ]
            report.append(
                {
                    "alert_id": group.alert_id,
                    "target": group.target_id,
                    "level": group.level,
                    "opened_at": group.opened_at.isoformat(),
                    "status": group.status,
                    "pages": pages,
                    "escalation_steps": sum(1 for r in rows if r["action"] == "escalation_step"),
                    "acknowledged_by": group.acked_by,
                    "acknowledged_after_s": (group.acked_at - group.opened_at).total_seconds()
                    if group.acked_at
                    else None,
                }
            )
        return {"alerts": report}
