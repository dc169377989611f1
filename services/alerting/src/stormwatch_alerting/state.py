"""Detector state that survives restarts and rebalances: a compacted changelog topic.

The baseline holds weeks of history, so losing it on a deploy would blind the detector for
days. After every batch, each target touched is written to ``alerting.detector-state.v1``
(keyed by target, compacted: only the newest state per target is kept). The changelog has
as many partitions as the scored topic and the same keys, so Kafka's partitioner puts a
target's state on the partition number its mentions use; when a partition is assigned to
this instance, its changelog partition is read back before any of its mentions.

Each state records the offset of the last scored mention it includes. If the process dies
after writing the state but before committing the consumer offset, the redelivered
mentions up to that offset are skipped instead of being counted twice.

States are written at a *flush*, not after every batch (Kafka Streams' commit interval):
under a backlog a batch touches most targets, and a state carries the target's whole
history, so per-batch writes cost more than the detection itself (measured 2026-12-01:
4.8 kB of changelog per scored mention on 300 targets). The consumer offset is committed
only at a flush, right after the states are durable, so a restart resumes from a commit
whose states match it; the work in between is redone, and the alerts it raises again carry
the same deterministic ids, which delivery de-duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from stormwatch_alerting.domain.detector import Detector

log = logging.getLogger("stormwatch.alerting.state")


class DetectorStateStore:
    def __init__(self, detector: Detector, bootstrap: str, changelog_topic: str) -> None:
        self.detector = detector
        self.bootstrap = bootstrap
        self.topic = changelog_topic
        self._applied: dict[str, tuple[int, int]] = {}
        self.restore_timeout_s = 120.0
        self._ready: set[int] = set()
        self._lock = asyncio.Lock()
        self._dirty: set[str] = set()
        """Targets whose state changed since the last flush."""
        self._uncommitted: dict[int, int] = {}
        """Per partition, the first offset consumed since the last commit (where to rewind)."""
        self._next: dict[int, int] = {}
        """Per partition, the offset after the last record handled: what a commit may say.
        Never the consumer's position: the consumer may already hold the next batch."""
        self._last_flush: float | None = None

    async def ensure_restored(self, partitions: Iterable[int]) -> None:
        """Restore every partition not restored since it was assigned, before its records.

        Called from the handler for each batch rather than trusting the rebalance callback
        alone: the consumer may hand out records of a new assignment while that callback is
        still reading the changelog, and a record applied before the restore would be
        overwritten by it.
        """
        missing = set(partitions) - self._ready
        if not missing:
            return
        async with self._lock:
            missing -= self._ready
            if missing:
                await self.restore(missing)
                self._ready |= missing

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget revoked partitions. Targets changed there since the last flush are dropped:
        their state is ahead of the committed offset, and the partition's next owner (maybe
        this instance again) rebuilds it from the changelog and that offset."""
        gone = set(partitions)
        self._ready -= gone
        for partition in gone:
            self._uncommitted.pop(partition, None)
            self._next.pop(partition, None)
        for target_id in [t for t in self._dirty if self._applied.get(t, (-1,))[0] in gone]:
            self._dirty.discard(target_id)
            self._applied.pop(target_id, None)
            self.detector.drop(target_id)

    def consumed(self, partition: int, offset: int) -> None:
        """Note a record the handler has taken on; the first per partition since the last
        commit is the rewind point."""
        self._uncommitted.setdefault(partition, offset)
        self._next[partition] = offset + 1

    def commit_offsets(self) -> dict[int, int]:
        """Per partition with work since the last commit, the offset to commit (the next
        record to read after a restart)."""
        return {p: self._next[p] for p in self._uncommitted if p in self._next}

    def flush_due(self, now: float, interval_s: float, force: bool = False) -> bool:
        """Due ``interval_s`` after the last flush (that bounds the work a crash redoes),
        or now when ``force``d (stopping). Not after every short batch: when sentiment is
        the bottleneck every batch is short, and the states would again be written per
        batch."""
        if not self._dirty and not self._uncommitted:
            return False
        return force or self._last_flush is None or now - self._last_flush >= interval_s

    def dirty_targets(self) -> list[str]:
        """The targets a flush writes (changed since the last flush, still held). They stay
        dirty until ``committed``: a flush that fails half-way must write them again."""
        known = set(self.detector.targets())
        return sorted(t for t in self._dirty if t in known)

    def committed(self, written: Iterable[str], now: float) -> None:
        """The states of ``written`` are durable and the offsets committed; the flush clock
        restarts."""
        self._dirty.difference_update(written)
        self._uncommitted.clear()
        self._last_flush = now

    def rewind_points(self) -> dict[int, int]:
        """Where each partition must restart after a failed batch (then forgotten)."""
        points = dict(self._uncommitted)
        self._uncommitted.clear()
        return points

    def already_applied(self, target_id: str, partition: int, offset: int) -> bool:
        seen = self._applied.get(target_id)
        return seen is not None and seen[0] == partition and offset <= seen[1]

    def mark(self, target_id: str, partition: int, offset: int) -> None:
        self._applied[target_id] = (partition, offset)
        self._dirty.add(target_id)

    def encode(self, target_id: str) -> bytes:
        partition, offset = self._applied.get(target_id, (-1, -1))
        return orjson.dumps(
            {
                "target_id": target_id,
                "partition": partition,
                "offset": offset,
                "state": self.detector.snapshot(target_id, live=True),  # written at once
            }
        )

    def encoded_chunks(
        self, targets: Iterable[str], max_bytes: int
    ) -> Iterator[list[tuple[bytes, bytes]]]:
        """``(state, key)`` of each target, in order, in lists of at most ``max_bytes`` of
        states (a state larger than that alone). Lazily: the next chunk is encoded only when
        asked for, after the writes of the one before were handed over."""
        chunk: list[tuple[bytes, bytes]] = []
        size = 0
        for target_id in targets:
            value = self.encode(target_id)
            if chunk and size + len(value) > max_bytes:
                yield chunk
                chunk, size = [], 0
            chunk.append((value, target_id.encode()))
            size += len(value)
        if chunk:
            yield chunk

    def apply(self, value: bytes | None, key: bytes | None) -> bool:
        if value is None:
            # A tombstone: the target's state was erased (``stormwatch forget``). An older
            # state restored earlier from the same changelog must not survive it.
            if key is not None:
                target_id = key.decode("utf-8", "replace")
                self.detector.drop(target_id)
                self._applied.pop(target_id, None)
                self._dirty.discard(target_id)
            return False
        try:
            entry = orjson.loads(value)
            target_id = str(entry["target_id"])
            self.detector.restore(target_id, entry["state"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # An unreadable state costs this target its history, not the service its life.
            log.error("Zustand nicht lesbar / unreadable detector state for key %r: %s", key, exc)
            return False
        self._applied[target_id] = (int(entry["partition"]), int(entry["offset"]))
        return True

    async def restore(self, partitions: Iterable[int]) -> int:
        """Read the changelog partitions to their end; returns how many states were loaded."""
        parts = [TopicPartition(self.topic, p) for p in sorted(set(partitions))]
        if not parts:
            return 0
        started = time.monotonic()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            # Belt and braces with the explicit seeks below: a position reset racing the
            # seek must still start from the oldest state, never from the end.
            auto_offset_reset="earliest",
        )
        await consumer.start()
        loaded = 0
        try:
            consumer.assign(parts)
            end = await consumer.end_offsets(parts)
            start = await consumer.beginning_offsets(parts)
            for tp in parts:
                consumer.seek(tp, start[tp])
            remaining = {tp for tp in parts if end[tp] > start[tp]}
            deadline = time.monotonic() + self.restore_timeout_s
            while remaining:
                if time.monotonic() > deadline:
                    # Better to run with a partial history (and say so) than not at all.
                    log.error(
                        "Zustand unvollständig / detector state restore timed out for %s",
                        sorted(tp.partition for tp in remaining),
                    )
                    break
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in batch.values():
                    for record in records:
                        loaded += self.apply(record.value, record.key)
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()
        if loaded:
            log.info(
                "Detektorzustand geladen / restored %d target state(s) from %s in %.2f s",
                loaded,
                [tp.partition for tp in parts],
                time.monotonic() - started,
            )
        return loaded


class RestoreOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
    """Restores assigned partitions early and forgets revoked ones (a later assignment
    of the same partition must read the changelog again: another instance moved on)."""

    def __init__(self, store: DetectorStateStore, source_topic: str) -> None:
        self.store = store
        self.source_topic = source_topic

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.store.revoke(tp.partition for tp in revoked if tp.topic == self.source_topic)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.store.ensure_restored(
            tp.partition for tp in assigned if tp.topic == self.source_topic
        )
