"""``KeyedSender.send_many`` on the real broker: the records it builds in batches land where
a plain keyed ``send`` of another client puts them (Kafka's murmur2 partitioning), in the
order given per partition, with the producer's timestamps, including one too big for a
batch. Consumers keyed by target rely on exactly that."""

from __future__ import annotations

import asyncio
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from stormwatch_shared.service import KeyedSender, make_broker
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import MENTIONS_RAW, MENTIONS_SCORED

pytestmark = [pytest.mark.kafka]


def _records(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes, int]]:
    """(partition, key, value, timestamp ms) of every record, in offset order per partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out: list[tuple[int, bytes, bytes, int]] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end[tp] for tp in parts):
            assert time.monotonic() < deadline, "the records did not arrive"
            for tp, batch in consumer.poll(timeout_ms=500, max_records=10_000).items():
                out.extend((tp.partition, r.key, r.value, r.timestamp) for r in batch)
        return sorted(out, key=lambda r: r[0])  # stable: the offset order stays per partition
    finally:
        consumer.close()


def test_batched_keyed_writes_land_where_a_plain_keyed_send_puts_them(
    kafka_settings: KafkaSettings,
) -> None:
    bootstrap = kafka_settings.bootstrap_servers
    keys = [f"ziel-{i % 17}".encode() for i in range(600)]
    items = [(f"{i:04d}".encode() * 20, key) for i, key in enumerate(keys)]
    big = b"B" * (300 * 1024)  # above the producer's 256 KiB batch: sent on its own
    items.insert(300, (big, keys[0]))
    batched = kafka_settings.topic(MENTIONS_SCORED)
    before_ms = int(time.time() * 1000)

    async def write() -> None:
        broker = make_broker(kafka_settings, "keyed-sender-test", max_request_size=1024 * 1024)
        await broker.connect()
        try:
            writes = await KeyedSender(broker).send_many(items, batched)
            await asyncio.gather(*writes)
        finally:
            await broker.stop()

    asyncio.run(write())
    plain = kafka_settings.topic(MENTIONS_RAW)
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=1024 * 1024)
    for value, key in items:
        producer.send(plain, key=key, value=value)
    producer.flush()
    producer.close()

    got, expected = _records(bootstrap, batched), _records(bootstrap, plain)
    assert [(p, k, v) for p, k, v, _t in got] == [(p, k, v) for p, k, v, _t in expected]
    assert len({p for p, *_ in got}) == 3
    assert (keys[0], big) in {(k, v) for _p, k, v, _t in got}
    assert all(before_ms - 1000 <= t <= time.time() * 1000 + 1000 for *_r, t in got)
