"""Keyed writes to Kafka: the producer's CPU per record, one ``send`` per record against
``KeyedSender.send_many`` (one record batch per partition), alternated in one broker.

Why: both services write one record per input record (sentiment a scored mention, alerting
a detector state), and the pipeline's rate is the sentiment service's CPU per mention. The
records are the pipeline bench's size (900 bytes), keyed by 50 targets, on six partitions,
with the services' producer settings (acks=all, idempotence, linger). CPU is the process's,
so it includes the producer's sender task and the wait for every write's confirmation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench_pipeline import broker
from stormwatch_shared.kafka import ensure_topics
from stormwatch_shared.service import KeyedSender, make_broker
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import MENTIONS_SCORED, topic_specs

RECORDS = 50_000
BATCH = 512  # the sentiment service's batch
ROUNDS = 3


def _items(n: int) -> list[tuple[bytes, bytes]]:
    return [(b"%08d" % i + b"x" * 892, b"target-%d" % (i % 50)) for i in range(n)]


async def _round(
    sender: KeyedSender, topic: str, items: list[tuple[bytes, bytes]], many: bool
) -> float:
    started = time.process_time()
    for i in range(0, len(items), BATCH):
        chunk = items[i : i + BATCH]
        if many:
            writes = await sender.send_many(chunk, topic)
        else:
            writes = [await sender.send(value, topic, key) for value, key in chunk]
        await asyncio.gather(*writes)
    return (time.process_time() - started) / len(items) * 1e6


async def _measure(bootstrap: str) -> dict[str, Any]:
    settings = KafkaSettings(
        bootstrap_servers=bootstrap, topic_prefix=f"send{uuid.uuid4().hex[:8]}.", partitions=6
    )
    ensure_topics(settings, [s for s in topic_specs(6) if s.name == MENTIONS_SCORED])
    topic = settings.topic(MENTIONS_SCORED)
    kafka = make_broker(settings, "bench-send")
    await kafka.connect()
    try:
        sender = KeyedSender(kafka)
        items = _items(RECORDS)
        await _round(sender, topic, items[:5_000], many=False)  # connections, metadata
        await _round(sender, topic, items[:5_000], many=True)
        per_record: list[float] = []
        batched: list[float] = []
        for _ in range(ROUNDS):
            per_record.append(await _round(sender, topic, items, many=False))
            batched.append(await _round(sender, topic, items, many=True))
    finally:
        await kafka.stop()
    return {
        "send_per_record_cpu_us": round(min(per_record), 2),
        "send_many_cpu_us": round(min(batched), 2),
        "send_per_record_cpu_us_rounds": " / ".join(f"{x:.2f}" for x in per_record),
        "send_many_cpu_us_rounds": " / ".join(f"{x:.2f}" for x in batched),
    }


def run() -> dict[str, Any]:
    with broker() as bootstrap:
        return asyncio.run(_measure(bootstrap))


if __name__ == "__main__":
    print(run())
