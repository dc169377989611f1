"""Channels behind one small interface; each says whether a failure is worth retrying."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from stormwatch_alerting.delivery.render import AlertEvent, render_email, render_log_line
from stormwatch_alerting.settings import AlertingSettings


class NotifyError(Exception):
    """``retry_after`` carries a server's Retry-After (seconds) when it sent one."""

    def __init__(
        self, message: str, *, recoverable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.recoverable = recoverable
        self.retry_after = retry_after


class Notifier(Protocol):
    channel: str

    async def send(self, alert: AlertEvent) -> str:
        """Deliver the alert; return a provider id or note. Raise NotifyError on failure."""
        ...


class LogNotifier:
    channel = "log"

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    async def send(self, alert: AlertEvent) -> str:
        self.logger.warning("ALARM %s", render_log_line(alert))
        return "logged"


class EmailNotifier:
    channel = "email"

    def __init__(self, settings: AlertingSettings) -> None:
        self.settings = settings

    async def send(self, alert: AlertEvent) -> str:
        s = self.settings
        rendered = render_email(alert, s.crisis_room_url)
        msg = EmailMessage()
        msg["From"] = s.email_from
        msg["To"] = ", ".join(s.email_to)
        msg["Subject"] = rendered.subject
        msg["Message-ID"] = f"<{alert.event_id.replace('|', '.')}@stormwatch>"
        msg.set_content(rendered.body)
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx is the server asking us to come back later; 5xx will not change on retry.
            raise NotifyError(
                f"SMTP {exc.code}: {exc.message}", recoverable=exc.code < 500
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise NotifyError(f"SMTP unreachable: {exc}", recoverable=True) from exc
        return msg["Message-ID"]
