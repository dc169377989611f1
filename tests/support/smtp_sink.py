"""A real SMTP server (aiosmtpd) that keeps what it receives, for tests and the demo."""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.sink.lock:
            self.sink.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"


class SmtpSink:
    def __init__(self, port: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        if port == 0:
            # aiosmtpd's start-up self-check connects to the configured port, so it cannot
            # be 0 (pick-any); choose a free one up front.
            from tests.support.kafka_local import free_port

            port = free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def subjects(self) -> list[str]:
        with self.lock:
            return [str(m["Subject"]) for m in self.messages]
