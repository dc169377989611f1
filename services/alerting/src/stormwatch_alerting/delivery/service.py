"""The delivery stage as the alerting app sees it: one object with start/stop/handle.

Keeping this seam small lets the notify pipeline (routing, silences, dedup, rate limits,
escalation, audit) grow behind it without touching the Kafka wiring in ``app.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from stormwatch_alerting.delivery.notifiers import (
    EmailNotifier,
    LogNotifier,
    Notifier,
    NotifyError,
)
from stormwatch_alerting.settings import AlertingSettings

log = logging.getLogger("stormwatch.alerting.delivery")


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


class Delivery:
    def __init__(self, settings: AlertingSettings, notifiers: list[Notifier] | None = None) -> None:
        self.settings = settings
        if notifiers is None:
            notifiers = [LogNotifier(log)]
            if settings.email_to:
                notifiers.append(EmailNotifier(settings))
        self.notifiers = notifiers

    async def start(self) -> None:
        """Open stores and background tasks (escalation timers) before consuming."""

    async def stop(self) -> None:
        """Flush and close; called on shutdown."""

    async def handle(self, alert: Any) -> dict[str, str]:
        """Deliver one alert event (already deduplicated by event id)."""
        return await deliver(alert, self.notifiers)
