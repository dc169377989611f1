"""Pieces every FastStream service shares: broker factory, raw decoding, logging."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from faststream.kafka import KafkaBroker

from stormwatch_shared import metrics
from stormwatch_shared.codec import encode
from stormwatch_shared.kafka import PRODUCER_DEFAULTS, dead_letter
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import dlq


async def raw_body(msg: Any) -> Any:
    """Hand handlers the undecoded bytes, so a malformed message reaches our dead-letter code
    instead of failing inside the framework where we could not say why."""
    return msg.body


async def publish_dead_letter(
    broker: KafkaBroker, service: str, topic: str, body: bytes, record: Any, reason: str
) -> Any:
    """Send a refused message to ``<topic>.dlq`` with its reason and position; count it.

    Returns the unconfirmed publish: callers await it with the batch's other writes, so the
    consumer offset is committed only once the dead letter is durable too.
    """
    letter = dead_letter(
        service=service,
        source_topic=topic,
        reason=reason,
        payload=body,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
    )
    logging.getLogger(f"stormwatch.{service}").warning(
        "Dead letter %s[%s]@%s: %s", topic, record.partition, record.offset, reason
    )
    metrics.record_dead_letter(service, topic)
    return await broker.publish(encode(letter), dlq(topic), key=record.key, no_confirm=True)


class KeyedSender:
    """Keyed writes of ready-made bytes, straight to the producer FastStream connected.

    ``broker.publish`` builds a publish command, a correlation id and headers and runs the
    publish middlewares for every message: measured here (2026-12-01, local broker) 29-36 µs
    of CPU per message against 14-17 µs for the producer's own ``send``, on every scored
    mention. Our consumers read raw bytes and use none of it. Where the broker has no real
    producer (FastStream's in-memory ``TestKafkaBroker``) it falls back to ``broker.publish``,
    so handler unit tests see the same messages.

    ``send`` returns the unconfirmed write; await it (with the batch's others) before the
    consumer offset may be committed.
    """

    def __init__(self, broker: KafkaBroker) -> None:
        from aiokafka import AIOKafkaProducer

        self.broker = broker
        self._kind = AIOKafkaProducer

    def _producer(self) -> Any:
        # Looked up on every send (a few attribute reads): a reconnected broker has a new
        # producer, and a stale one must never be written to.
        state = getattr(getattr(self.broker, "config", None), "producer", None)
        producer = getattr(getattr(state, "_producer", None), "producer", None)
        return producer if isinstance(producer, self._kind) else None

    async def send(self, value: bytes, topic: str, key: bytes | None) -> Any:
        producer = self._producer()
        if producer is None:
            return await self.broker.publish(value, topic, key=key, no_confirm=True)
        return await producer.send(topic, value, key=key)


def make_broker(settings: KafkaSettings, client_id: str, **extra: Any) -> KafkaBroker:
    logger = logging.getLogger(f"stormwatch.{client_id}.broker")
    return KafkaBroker(
        settings.bootstrap_servers.split(","),
        client_id=client_id,
        logger=logger,
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
        **{**PRODUCER_DEFAULTS, **extra},
    )


def configure_logging(service: str) -> logging.Logger:
    level = os.environ.get("STORMWATCH_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        stream=sys.stderr,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(f"stormwatch.{service}")
