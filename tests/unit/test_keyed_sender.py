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


class _Builder:
    """A record batch that holds ``room`` records, as the producer's ``create_batch`` gives."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes | None, bytes]] = []

    def append(self, *, key: bytes | None, value: bytes, timestamp: float | None) -> Any:
        assert timestamp is None  # the time of the append, as ``send`` would stamp it
        if len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()


class _BatchingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """What ``send_many`` touches of a connected producer, writing to a list in order."""

    def __init__(self, partitions: int, room: int = 1000, batch_size: int = 1024) -> None:
        from aiokafka.partitioner import DefaultPartitioner

        self._partitioner = DefaultPartitioner()
        self._message_accumulator = SimpleNamespace(_batch_size=batch_size)
        self.n, self.room = partitions, room
        # (partition, key, value, how): what reached the broker, in the order it was queued
        self.written: list[tuple[int, bytes | None, bytes, str]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.n))

    def create_batch(self) -> _Builder:
        return _Builder(self.room)

    async def send_batch(self, batch: _Builder, topic: str, *, partition: int) -> str:
        assert batch.records, "an empty batch was sent"
        self.written.extend((partition, k, v, "batch") for k, v in batch.records)
        return f"batch:{partition}"

    async def send(  # type: ignore[override]
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> str:
        assert partition is not None
        self.written.append((partition, key, value, "send"))
        return f"send:{partition}"


def _murmur_partition(key: bytes, n: int) -> int:
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % n


def _many(producer: Any, items: list[tuple[bytes, bytes | None]]) -> list[Any]:
    broker = _Broker(SimpleNamespace(producer=producer))
    return asyncio.run(KeyedSender(broker).send_many(items, "mentions.scored.v1"))  # type: ignore[arg-type]


def test_send_many_writes_each_key_to_its_murmur2_partition_in_order() -> None:
    keys = [f"target-{i % 23}".encode() for i in range(400)]
    items = [(f"v{i}".encode(), key) for i, key in enumerate(keys)]
    producer = _BatchingProducer(partitions=6)
    writes = _many(producer, items)
    assert sorted(v for _p, _k, v, _h in producer.written) == sorted(v for v, _k in items)
    for partition, key, _value, how in producer.written:
        assert key is not None and partition == _murmur_partition(key, 6)
        assert how == "batch"
    for partition in range(6):  # per partition, the order of the items
        got = [v for p, _k, v, _h in producer.written if p == partition]
        assert got == [
            v for v, k in items if k is not None and _murmur_partition(k, 6) == partition
        ]
    assert len(writes) == len({p for p, *_ in producer.written})  # one write per partition batch


def test_a_full_batch_is_sent_and_a_new_one_started() -> None:
    items = [(f"v{i}".encode(), b"paula") for i in range(25)]
    producer = _BatchingProducer(partitions=3, room=10)
    writes = _many(producer, items)
    assert [v for _p, _k, v, _h in producer.written] == [v for v, _k in items]
    assert len(writes) == 3  # 10 + 10 + 5


def test_a_value_too_big_for_a_batch_goes_through_send_after_what_came_before_it() -> None:
    big = b"x" * 2048
    items = [(b"a", b"paula"), (b"b", b"paula"), (big, b"paula"), (b"c", b"paula")]
    producer = _BatchingProducer(partitions=3, batch_size=1024)
    _many(producer, items)
    assert [(v, how) for _p, _k, v, how in producer.written] == [
        (b"a", "batch"),
        (b"b", "batch"),
        (big, "send"),
        (b"c", "batch"),
    ]
    assert len({p for p, *_ in producer.written}) == 1


def test_a_partitioner_of_its_own_is_asked_for_every_record() -> None:
    asked: list[bytes | None] = []

    def last_partition(key: bytes | None, all_: list[int], available: list[int]) -> int:
        asked.append(key)
        return all_[-1]

    producer = _BatchingProducer(partitions=4)
    producer._partitioner = last_partition
    _many(producer, [(b"1", b"k"), (b"2", b"k"), (b"3", None)])
    assert asked == [b"k", b"k", None]
    assert {p for p, *_ in producer.written} == {3}


def test_send_many_without_a_real_producer_publishes_each_in_order() -> None:
    broker = _Broker(SimpleNamespace(producer=object()))
    items: list[tuple[bytes, bytes | None]] = [(b"1", b"a"), (b"2", None), (b"3", b"a")]
    result = asyncio.run(KeyedSender(broker).send_many(items, "alerts.v1"))  # type: ignore[arg-type]
    assert result == ["published"] * 3
    assert broker.published == [
        (b"1", "alerts.v1", b"a", True),
        (b"2", "alerts.v1", None, True),
        (b"3", "alerts.v1", b"a", True),
    ]
