"""Starting and reaching the real local Kafka broker from tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "kafka-local" / "kafka.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_kafka() -> Iterator[str]:
    """A broker for this test session: the configured one, or a fresh local one."""
    configured = os.environ.get("STORMWATCH_TEST_KAFKA")
    if configured:
        yield configured
        return
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="stormwatch-kafka-"))
    subprocess.run([str(KAFKA_SH), "start", str(port), str(data)], check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(KAFKA_SH), "stop", str(data)], check=False)
        remove_kafka_data(data)


def remove_kafka_data(data: Path) -> None:
    """A stopped test broker's directory: its logs hold every topic the session wrote
    (hundreds of MB), so it is kept only on request (``STORMWATCH_KEEP_KAFKA_DATA``)."""
    if os.environ.get("STORMWATCH_KEEP_KAFKA_DATA"):
        print(f"Kafka data kept in {data}")
    else:
        shutil.rmtree(data, ignore_errors=True)


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


def read_all(
    bootstrap: str, topic: str, timeout_s: float = 30.0
) -> list[tuple[bytes | None, bytes]]:
    """Every record currently in ``topic`` (all partitions), as (key, value).

    Reads up to the end offsets taken at the start; waits up to ``timeout_s`` for them, so
    a slow first fetch on a loaded machine is not mistaken for an empty topic.
    """
    import time

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out: list[tuple[bytes | None, bytes]] = []
        remaining = {tp for tp in parts if end[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            for tp, records in batch.items():
                out.extend((r.key, r.value) for r in records if r.offset < end[tp])
            for tp in list(remaining):
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        if remaining:
            raise TimeoutError(f"could not read {topic} to its end within {timeout_s} s")
        return out
    finally:
        consumer.close()


def end_offset_total(bootstrap: str, topic: str) -> int:
    """Records written to ``topic`` so far (sum of its partitions' end offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values()) if parts else 0
    finally:
        consumer.close()


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages in ``topic`` not yet committed by consumer group ``group``."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import (
        CoordinatorLoadInProgressError,
        CoordinatorNotAvailableError,
        NotCoordinatorError,
    )

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        end = consumer.end_offsets(parts)
        try:
            committed = admin.list_group_offsets(group).get(group, {})
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
            # a fresh broker's offsets topic is still loading: nothing committed to read yet
            committed = {}
        lag = 0
        for tp in parts:
            meta = committed.get(tp)
            lag += end[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag
    finally:
        consumer.close()
        admin.close()
