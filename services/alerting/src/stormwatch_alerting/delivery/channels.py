"""Channel adapters for routed delivery: each sends one ``Outbound`` and classifies failure.

Every adapter turns its transport's errors into ``NotifyError`` with ``recoverable`` (worth a
retry: timeouts, 5xx, 429) and ``retry_after`` (the server's own pacing), so retry policy
lives in one place (``domain.notify.retry_delay``) and not in six slightly different loops.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from stormwatch_alerting.delivery.notifiers import NotifyError
from stormwatch_alerting.settings import AlertingSettings


@dataclass(frozen=True)
class Outbound:
    channel: str
    to: str
    """Email address, E.164 phone, ntfy topic or webhook URL."""
    subject: str
    text: str
    html: str | None = None
    ack_url: str | None = None
    view_url: str | None = None
    priority: int = 3
    message_id: str | None = None
    drill: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Sender(Protocol):
    channel: str
    name: str

    async def send(self, msg: Outbound) -> str:
        """Deliver; return the provider's id. Raise NotifyError on failure."""
        ...


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def http_error(resp: httpx.Response, what: str) -> NotifyError:
    code = resp.status_code
    return NotifyError(
        f"{what} HTTP {code}: {resp.text[:200]}",
        recoverable=code == 429 or code == 408 or code >= 500,
        retry_after=retry_after_s(resp.headers.get("Retry-After")),
    )


async def _post(client: httpx.AsyncClient, what: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        resp = await client.post(url, **kwargs)
    except httpx.HTTPError as exc:
        raise NotifyError(f"{what} unreachable: {exc!r}", recoverable=True) from exc
    if resp.status_code >= 300:
        raise http_error(resp, what)
    return resp


class EmailSender:
    channel = "email"
    name = "smtp"

    def __init__(self, settings: AlertingSettings) -> None:
        self.settings = settings

    async def send(self, msg: Outbound) -> str:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.email_from
        mail["To"] = msg.to
        mail["Subject"] = msg.subject
        mail["Message-ID"] = msg.message_id or email.utils.make_msgid(domain="stormwatch")
        if msg.drill:
            mail["X-Stormwatch-Drill"] = "true"
        mail.set_content(msg.text)
        if msg.html:
            mail.add_alternative(msg.html, subtype="html")
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise NotifyError(
                f"SMTP {exc.code}: {exc.message}", recoverable=exc.code < 500
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise NotifyError(f"SMTP unreachable: {exc!r}", recoverable=True) from exc
        return str(mail["Message-ID"])


class TwilioSms:
    """Twilio's Messages API through the official ``twilio`` package (async client)."""

    channel = "sms"
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_: str,
        *,
        base_url: str = "https://api.twilio.com",
        status_callback: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.account_sid, self.auth_token, self.from_ = account_sid, auth_token, from_
        self.base_url, self.status_callback, self.timeout = base_url, status_callback, timeout

    async def send(self, msg: Outbound) -> str:
        from twilio.base.exceptions import TwilioRestException
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        class _Http(AsyncTwilioHttpClient):  # keeps the last response for Retry-After
            last: Any = None

            async def request(self, *args: Any, **kwargs: Any) -> Any:
                self.last = await super().request(*args, **kwargs)
                return self.last

        http = _Http(pool_connections=False, timeout=self.timeout)
        client = Client(self.account_sid, self.auth_token, http_client=http)
        client.api.base_url = self.base_url
        kwargs: dict[str, Any] = {"to": msg.to, "from_": self.from_, "body": msg.text}
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        try:
            message = await client.messages.create_async(**kwargs)
        except TwilioRestException as exc:
            headers = getattr(http.last, "headers", None) or {}
            status = int(exc.status or 0)
            raise NotifyError(
                f"Twilio {status} ({exc.code}): {exc.msg}",
                recoverable=status in (408, 429) or status >= 500,
                retry_after=retry_after_s(headers.get("Retry-After")),
            ) from exc
        except (OSError, TimeoutError) as exc:
            raise NotifyError(f"Twilio unreachable: {exc!r}", recoverable=True) from exc
        except Exception as exc:  # aiohttp client errors are not OSError
            if type(exc).__module__.startswith("aiohttp"):
                raise NotifyError(f"Twilio unreachable: {exc!r}", recoverable=True) from exc
            raise
        return str(message.sid)


class HttpSms:
    """A generic form-POST gateway in the style of German providers (seven.io and similar)."""

    channel = "sms"
    name = "http"

    def __init__(
        self, client: httpx.AsyncClient, url: str, api_key: str, from_: str = "stormwatch"
    ) -> None:
        self.client, self.url, self.api_key, self.from_ = client, url, api_key, from_

    async def send(self, msg: Outbound) -> str:
        resp = await _post(
            self.client,
            "SMS gateway",
            self.url,
            data={"to": msg.to, "text": msg.text, "from": self.from_, "json": "1"},
            headers={"X-Api-Key": self.api_key, "Accept": "application/json"},
        )
        try:
            body = resp.json()
        except ValueError:
            return resp.text.strip()[:100] or "ok"
        success = str(body.get("success", "100")) if isinstance(body, dict) else "100"
        if success not in ("100", "101", "true", "True"):
            raise NotifyError(f"SMS gateway refused: code {success}", recoverable=False)
        messages = body.get("messages") if isinstance(body, dict) else None
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            return str(messages[0].get("id", "ok"))
        return str(body.get("id", "ok")) if isinstance(body, dict) else "ok"


class NtfyPush:
    """ntfy JSON publishing; umlauts in titles need JSON, not headers."""

    channel = "push"
    name = "ntfy"

    def __init__(self, client: httpx.AsyncClient, server: str, token: str | None = None) -> None:
        self.client, self.server, self.token = client, server.rstrip("/"), token

    async def send(self, msg: Outbound) -> str:
        actions = []
        if msg.view_url:
            actions.append({"action": "view", "label": "Krisenraum", "url": msg.view_url})
        if msg.ack_url:
            actions.append(
                {
                    "action": "http",
                    "label": "Bestätigen / Ack",
                    "url": msg.ack_url,
                    "method": "POST",
                    "clear": True,
                }
            )
        payload = {
            "topic": msg.to,
            "title": msg.subject,
            "message": msg.text,
            "priority": msg.priority,
            "tags": ["rotating_light"] + (["drill"] if msg.drill else []),
            "actions": actions,
        }
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = await _post(self.client, "ntfy", self.server, json=payload, headers=headers)
        try:
            return str(resp.json().get("id", "ok"))
        except ValueError:
            return "ok"


class ChatWebhook:
    """Slack and Mattermost incoming webhooks take ``{"text"}``; Teams Workflows an
    Adaptive Card inside a message envelope."""

    channel = "chat"

    def __init__(self, client: httpx.AsyncClient, kind: str, url: str) -> None:
        self.client, self.kind, self.url = client, kind, url
        self.name = kind

    def payload(self, msg: Outbound) -> dict[str, Any]:
        if self.kind == "teams":
            body: list[dict[str, Any]] = [
                {"type": "TextBlock", "text": msg.subject, "weight": "Bolder", "wrap": True},
                {"type": "TextBlock", "text": msg.text, "wrap": True},
            ]
            card: dict[str, Any] = {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
            if msg.view_url:
                card["actions"] = [
                    {"type": "Action.OpenUrl", "title": "Krisenraum", "url": msg.view_url}
                ]
            return {
                "type": "message",
                "attachments": [
                    {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
                ],
            }
        return {"text": msg.text}

    async def send(self, msg: Outbound) -> str:
        resp = await _post(self.client, f"{self.kind} webhook", self.url, json=self.payload(msg))
        return resp.headers.get("x-request-id") or f"{self.kind}:{resp.status_code}"


class AlertmanagerSink:
    """Posts to Alertmanager's ``/api/v2/alerts``; re-sent while active so it does not
    resolve the alert on its own after ``resolve_timeout``."""

    channel = "alertmanager"
    name = "alertmanager"

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client, self.url = client, url.rstrip("/")

    async def send(self, msg: Outbound) -> str:
        await _post(self.client, "Alertmanager", f"{self.url}/api/v2/alerts", json=[msg.extra])
        return "accepted"


class GrafanaAnnotations:
    channel = "grafana"
    name = "grafana"

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None) -> None:
        self.client, self.url, self.token = client, url.rstrip("/"), token

    async def send(self, msg: Outbound) -> str:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = await _post(
            self.client, "Grafana", f"{self.url}/api/annotations", json=msg.extra, headers=headers
        )
        try:
            return str(resp.json().get("id", "ok"))
        except ValueError:
            return "ok"
