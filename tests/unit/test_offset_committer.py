"""The background offset commit of the sentiment service (``OffsetCommitter``) and the batches
whose writes are confirmed behind the next one (``ConfirmedBatches``), on a fake consumer:
newest offsets win, nothing outside the assignment, failures retried, stop waits; a batch is
committed only after its writes and every earlier batch's, a failed one is read again."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from aiokafka import TopicPartition
from stormwatch_shared.service import ConfirmedBatches, OffsetCommitter, batch_offsets, rewind

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


def write(delay: float, fails: bool = False) -> asyncio.Future[None]:
    """An unconfirmed producer write that is confirmed (or fails) after ``delay``."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    if fails:
        loop.call_later(delay, fut.set_exception, ConnectionError("no leader"))
    else:
        loop.call_later(delay, fut.set_result, None)
    return fut


async def settled(c: ConfirmedBatches) -> None:
    await c.drain()


@sync
async def test_a_batch_is_committed_only_after_its_writes_and_the_earlier_batches() -> None:
    consumer = FakeConsumer({A, B})
    c = ConfirmedBatches(OffsetCommitter(log), log)
    # the first batch's write is slow, the second's quick: the second must still wait
    await c.hand_over(consumer, [Rec(0, 0), Rec(0, 1)], [write(0.05)], c.generation)
    await c.hand_over(consumer, [Rec(0, 2), Rec(1, 0)], [write(0.0)], c.generation)
    await asyncio.sleep(0.02)
    assert consumer.commits == []  # nothing confirmed in order yet
    await settled(c)
    assert consumer.commits[-1] == {A: 3, B: 1}
    assert all(commit.get(A, 0) <= 3 for commit in consumer.commits)


@sync
async def test_hand_over_returns_before_the_writes_are_confirmed() -> None:
    consumer = FakeConsumer({A})
    c = ConfirmedBatches(OffsetCommitter(log), log)
    slow = write(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await c.hand_over(consumer, [Rec(0, 0)], [slow], c.generation)
    assert loop.time() - started < 0.1 and not slow.done()
    await settled(c)
    assert consumer.commits == [{A: 1}]


@sync
async def test_a_failed_write_rewinds_its_batch_and_nothing_after_it_is_committed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer({A, B})
    c = ConfirmedBatches(OffsetCommitter(log), log)
    await c.hand_over(consumer, [Rec(0, 0)], [write(0.0)], c.generation)
    gen = c.generation
    await c.hand_over(consumer, [Rec(0, 1), Rec(1, 5)], [write(0.01, fails=True)], gen)
    await c.hand_over(consumer, [Rec(0, 2), Rec(1, 6)], [write(0.0)], gen)  # taken before
    await settled(c)
    assert sorted(consumer.seeks) == [(A, 1), (B, 5)]
    assert consumer.commits == [{A: 1}]  # the first batch only
    assert "writes not confirmed" in caplog.text
    # the batches read again after the rewind carry the new generation and are committed
    assert c.generation == gen + 1
    await c.hand_over(consumer, [Rec(0, 1), Rec(1, 5), Rec(0, 2)], [write(0.0)], c.generation)
    await settled(c)
    assert consumer.commits[-1] == {A: 3, B: 6}


@sync
async def test_at_most_max_unconfirmed_batches_wait() -> None:
    consumer = FakeConsumer({A})
    c = ConfirmedBatches(OffsetCommitter(log), log, max_unconfirmed=2)
    writes = [write(0.05 * (i + 1)) for i in range(3)]
    for i, w in enumerate(writes):
        await c.hand_over(consumer, [Rec(0, i)], [w], c.generation)
    # the third hand-over had to wait for the first batch's write
    assert writes[0].done() and not writes[2].done()
    await settled(c)
    assert consumer.commits[-1] == {A: 3}


@pytest.mark.parametrize("with_drain", [False, True])
@sync
async def test_while_stopping_hand_over_returns_once_everything_is_committed(
    with_drain: bool,
) -> None:
    consumer = FakeConsumer({A})
    committer = OffsetCommitter(log)
    c = ConfirmedBatches(committer, log)
    await c.hand_over(consumer, [Rec(0, 0)], [write(0.03)], c.generation)
    await c.hand_over(consumer, [Rec(0, 1)], [write(0.06)], c.generation)
    committer.stopping = True
    last = c.hand_over(consumer, [Rec(0, 2)], [write(0.01)], c.generation)
    # at shutdown the drain may wait for the same oldest batch as the handler's last one
    await (asyncio.gather(last, c.drain()) if with_drain else last)
    assert consumer.commits[-1] == {A: 3}


@sync
async def test_a_failed_batch_whose_partitions_were_taken_away_is_left_to_their_owner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Revoked(FakeConsumer):
        def seek(self, tp: Any, offset: int) -> None:
            raise RuntimeError("partition not assigned")

    consumer = Revoked({A})
    c = ConfirmedBatches(OffsetCommitter(log), log)
    await c.hand_over(consumer, [Rec(0, 0)], [write(0.0, fails=True)], c.generation)
    await settled(c)
    assert consumer.commits == []
    assert "could not seek back" in caplog.text
