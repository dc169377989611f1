"""The background offset commit of the sentiment service (``OffsetCommitter``), on a fake
consumer: newest offsets win, nothing outside the assignment, failures retried, stop waits."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from aiokafka import TopicPartition
from stormwatch_shared.service import OffsetCommitter, batch_offsets, rewind

A, B = TopicPartition("t", 0), TopicPartition("t", 1)
log = logging.getLogger("test")


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run the async test body in a fresh event loop (no async plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


class FakeConsumer:
    def __init__(self, assigned: set[Any], failures: int = 0, delay: float = 0.0) -> None:
        self.assigned = assigned
        self.failures = failures
        self.delay = delay
        self.commits: list[dict[Any, int]] = []
        self.seeks: list[tuple[Any, int]] = []

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    async def commit(self, offsets: dict[Any, int]) -> None:
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker gone")
        self.commits.append(dict(offsets))

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


class Rec:
    def __init__(self, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = "t", partition, offset


def test_batch_offsets_and_rewind_take_the_last_and_first_record_per_partition() -> None:
    records = [Rec(0, 5), Rec(1, 9), Rec(0, 7), Rec(0, 6), Rec(1, 8)]
    assert batch_offsets(records) == {A: 8, B: 10}
    consumer = FakeConsumer({A, B})
    rewind(consumer, records)
    assert sorted(consumer.seeks) == [(A, 5), (B, 8)]


@sync
async def test_a_commit_in_flight_is_superseded_not_queued() -> None:
    consumer = FakeConsumer({A, B}, delay=0.05)
    c = OffsetCommitter(log)
    await c.commit(consumer, {A: 10})
    await asyncio.sleep(0.01)  # the first commit is on the wire
    await c.commit(consumer, {A: 20, B: 3})
    await c.commit(consumer, {A: 15, B: 5})  # A's 15 is older than 20: never goes back
    for _ in range(100):
        if len(consumer.commits) == 2:
            break
        await asyncio.sleep(0.01)
    assert consumer.commits == [{A: 10}, {A: 20, B: 5}]


@sync
async def test_offsets_of_partitions_no_longer_assigned_are_dropped() -> None:
    consumer = FakeConsumer({B})
    c = OffsetCommitter(log)
    await c.commit(consumer, {A: 4, B: 7})
    await c.flush()
    assert consumer.commits == [{B: 7}]


@sync
async def test_a_failed_commit_is_retried_with_what_came_since(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer({A, B}, failures=2)
    c = OffsetCommitter(log, retry_s=0.01)
    await c.commit(consumer, {A: 3})
    await asyncio.sleep(0.005)
    await c.commit(consumer, {B: 9})
    for _ in range(100):
        if consumer.commits:
            break
        await asyncio.sleep(0.01)
    assert consumer.commits == [{A: 3, B: 9}]
    assert "offset commit failed" in caplog.text


@sync
async def test_while_stopping_a_commit_returns_only_once_it_is_written() -> None:
    consumer = FakeConsumer({A}, delay=0.02)
    c = OffsetCommitter(log)
    await c.commit(consumer, {A: 1})  # in the background
    c.stopping = True
    await c.commit(consumer, {A: 2})  # the last batch: waits
    assert consumer.commits[-1] == {A: 2}


@sync
async def test_flush_cancelling_a_commit_on_the_wire_keeps_its_offsets() -> None:
    consumer = FakeConsumer({A, B}, delay=0.05)
    c = OffsetCommitter(log)
    await c.commit(consumer, {A: 1, B: 2})
    await asyncio.sleep(0.01)
    await c.flush()  # cancels the slow one; its offsets are committed here instead
    assert consumer.commits[-1] == {A: 1, B: 2}
