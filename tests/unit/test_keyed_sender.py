"""KeyedSender: the producer's own ``send`` when FastStream holds a real one, else
``broker.publish`` (the in-memory test broker), with the same topic, key and bytes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaProducer
from stormwatch_shared.service import KeyedSender


class _Broker:
    def __init__(self, producer: Any) -> None:
        self.config = SimpleNamespace(producer=SimpleNamespace(_producer=producer))
        self.published: list[tuple[bytes, str, bytes | None, bool]] = []

    async def publish(self, value: bytes, topic: str, *, key: Any, no_confirm: bool) -> str:
        self.published.append((value, topic, key, no_confirm))
        return "published"


class _Producer(AIOKafkaProducer):  # type: ignore[misc]
    def __init__(self) -> None:  # no connection: only ``send`` is used
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> str:  # type: ignore[override]
        self.sent.append((topic, value, key))
        return "sent"


def test_without_a_real_producer_it_publishes_through_the_broker() -> None:
    broker = _Broker(SimpleNamespace(producer=object()))
    result = asyncio.run(KeyedSender(broker).send(b"{}", "mentions.scored.v1", b"paula"))  # type: ignore[arg-type]
    assert result == "published"
    assert broker.published == [(b"{}", "mentions.scored.v1", b"paula", True)]


def test_with_a_real_producer_it_sends_directly() -> None:
    producer = _Producer()
    broker = _Broker(SimpleNamespace(producer=producer))
    result = asyncio.run(KeyedSender(broker).send(b"{}", "alerts.v1", b"hospital"))  # type: ignore[arg-type]
    assert result == "sent"
    assert producer.sent == [("alerts.v1", b"{}", b"hospital")]
    assert broker.published == []
