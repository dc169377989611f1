"""Pieces every FastStream service shares: broker factory, raw decoding, logging."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream.kafka import KafkaBroker

from stormwatch_shared import metrics
from stormwatch_shared.codec import encode
from stormwatch_shared.kafka import dead_letter, producer_config
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


def current_message(broker: KafkaBroker) -> Any:
    """The ``KafkaMessage`` being handled, read from FastStream's context.

    Why not a handler parameter ``message: KafkaMessage``: fast-depends resolves it as a
    custom field whose ``use`` is synchronous, and runs that in a worker thread, one thread
    hop per handler call (FastStream 0.7.8, fast-depends 3.0.9; py-spy showed it as 4 % of
    the alerting service's CPU in the pipeline bench, 2026-12-04). Handlers that read
    offsets and the consumer take only their bodies and call this.
    """
    message = broker.context.get_local("message")
    if message is None:
        raise RuntimeError("current_message() called outside a message handler")
    return message


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
        self._partitions: dict[tuple[str, int], dict[bytes, int]] = {}

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

    async def send_many(self, items: Sequence[tuple[bytes, bytes | None]], topic: str) -> list[Any]:
        """Keyed writes of a whole batch, ``(value, key)`` each: one record batch per
        partition instead of one ``send`` per record. Returns the unconfirmed writes, as
        ``send`` does (one per partition batch).

        Why: ``AIOKafkaProducer.send`` costs 18-22 µs of CPU per record in Python (metadata
        wait, partitioner, a future per record, the accumulator), filling the producer's own
        record batches through ``create_batch``/``send_batch`` 6.3-6.8 (``bench/bench_send.py``
        in ``make bench``, 2026-12-04). On the sentiment service that is every scored mention.

        Same records as ``send`` would write: the partition is the producer's partitioner's
        (murmur2 of the key, as every Kafka client computes it, remembered per key), the
        order within a partition is the order of ``items``, the timestamps are the time of
        the append. A value that does not fit a batch goes through ``send`` (which refuses
        what exceeds ``max_request_size``, as before), after what came before it on its
        partition, so the order holds there too.
        """
        producer = self._producer()
        if producer is None:
            return [await self.send(value, topic, key) for value, key in items]
        partitions = sorted(await producer.partitions_for(topic))
        partition_of = self._partition_finder(producer, topic, partitions)
        limit = producer._message_accumulator._batch_size
        builders: dict[int, Any] = {}
        writes: list[Any] = []
        for value, key in items:
            partition = partition_of(key)
            builder = builders.get(partition)
            if len(value) >= limit:
                if builder is not None:  # what came before it on its partition goes first
                    writes.append(await producer.send_batch(builder, topic, partition=partition))
                    del builders[partition]
                writes.append(await producer.send(topic, value, key=key, partition=partition))
                continue
            if builder is None:
                builder = builders[partition] = producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None) is None:  # full
                writes.append(await producer.send_batch(builder, topic, partition=partition))
                builder = builders[partition] = producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
        for partition, builder in builders.items():
            writes.append(await producer.send_batch(builder, topic, partition=partition))
        return writes

    def _partition_finder(
        self, producer: Any, topic: str, partitions: list[int]
    ) -> Callable[[bytes | None], int]:
        """The producer's partitioner, remembered per key where it depends on the key alone
        (aiokafka's default: murmur2 of the key; 1.4-3.9 µs per record in Python)."""
        from aiokafka.partitioner import DefaultPartitioner

        partitioner = producer._partitioner
        if type(partitioner) is not DefaultPartitioner:  # it may look at more: ask each time
            return lambda key: int(partitioner(key, partitions, partitions))
        known = self._partitions.get((topic, len(partitions)))
        if known is None or len(known) > 100_000:  # bounded: target ids are few, but unchecked
            known = self._partitions[(topic, len(partitions))] = {}

        def partition_of(key: bytes | None) -> int:
            if key is None:
                return int(partitioner(key, partitions, partitions))  # random, as ``send``
            found = known.get(key)
            if found is None:
                found = known[key] = int(partitioner(key, partitions, partitions))
            return found

        return partition_of


class OffsetCommitter:
    """Commits a consumer's offsets in the background, so the next batch need not wait.

    Why: with the commit awaited after every batch, the sentiment service spent 9 ms per
    batch of 512 waiting for it (1.8 s of a 21 s burst, measured 2026-12-02): 8 % of the
    stage, with nothing else to do meanwhile. Offsets are cumulative, so a commit still in
    flight when the next batch finishes is not queued behind: the next one carries the
    newest offset of every partition and supersedes it.

    What it does not change: a batch's offsets are handed over only after its writes are
    confirmed, so a commit never covers an unconfirmed write; a crash before the commit
    lands redoes those batches, which downstream dedup on ``event_id`` absorbs. A failed
    commit is retried (with whatever came since) after ``retry_s``; offsets of partitions no
    longer assigned (a rebalance) are dropped, their new owner starts from the last commit.
    While the service stops (``stopping``), ``commit`` waits for the write, so the last
    batch is committed before the consumer closes.
    """

    def __init__(self, log: logging.Logger, retry_s: float = 1.0) -> None:
        self.log = log
        self.retry_s = retry_s
        self.stopping = False
        self._wanted: dict[Any, int] = {}
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    async def commit(self, consumer: Any, offsets: dict[Any, int]) -> None:
        """Hand over ``offsets`` (partition -> next offset to read) of a finished batch."""
        self._consumer = consumer
        wanted = self._wanted
        for tp, offset in offsets.items():
            if offset > wanted.get(tp, -1):
                wanted[tp] = offset
        if self.stopping:
            await self.flush()
        elif self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def flush(self) -> None:
        """Commit everything handed over, once, now: a background commit still running (or
        sleeping before a retry) is cancelled and its offsets go into this one."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()  # it may be sleeping before a retry: this call commits instead
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._commit_once()

    async def _run(self) -> None:
        while self._wanted:
            if not await self._commit_once():
                await asyncio.sleep(self.retry_s)

    async def _commit_once(self) -> bool:
        consumer, batch = self._consumer, self._wanted
        if consumer is None or not batch:
            return True
        self._wanted = {}
        assigned = consumer.assignment()
        batch = {tp: o for tp, o in batch.items() if tp in assigned}
        if not batch:
            return True
        try:
            await consumer.commit(batch)
        except BaseException as exc:
            # kept for the next try (also when cancelled by ``flush``, which then commits
            # them); newer offsets that came meanwhile win
            for tp, offset in batch.items():
                if offset > self._wanted.get(tp, -1):
                    self._wanted[tp] = offset
            if not isinstance(exc, Exception):
                raise
            self.log.warning(
                "Offsets nicht bestätigt, neuer Versuch / offset commit failed, retrying: %s",
                exc,
            )
            return False
        return True


class ConfirmedBatches:
    """Lets a consumer handle its next batch while the last one's writes are confirmed.

    Why: the sentiment service awaited every batch's writes before it took the next batch,
    and with the producer's linger and ``acks=all`` that wait was 7.6 ms per batch of 512
    (1.5 s of a 7.7 s burst, measured 2026-12-04): a fifth of the stage with nothing to do.
    Kafka Streams does the same: sends are asynchronous, the commit waits for them.

    What it keeps: a batch's offsets reach the ``OffsetCommitter`` only once all of its
    writes (results and dead letters) are confirmed and every earlier batch's were, so a
    commit never covers an unconfirmed write. A batch whose writes fail is read again: its
    partitions are sought back to its first records, and the batches handled after it (their
    ``generation`` is older than the rewind) are not committed either; they are read again
    too, and what they wrote twice, downstream dedup on ``event_id`` absorbs. At most
    ``max_unconfirmed`` batches wait at once (backpressure on a slow broker); while the
    service stops, ``hand_over`` returns only once everything handed over is committed.
    """

    def __init__(
        self, committer: OffsetCommitter, log: logging.Logger, max_unconfirmed: int = 4
    ) -> None:
        self.committer = committer
        self.log = log
        self.max_unconfirmed = max_unconfirmed
        self.generation = 0
        """Raised by every rewind: a batch handled from an older one is not committed."""
        self._waiting: collections.deque[asyncio.Task[None]] = collections.deque()

    async def hand_over(
        self, consumer: Any, records: Any, writes: list[Any], generation: int
    ) -> None:
        """Hand over a handled batch (``records``) and its unconfirmed ``writes``;
        ``generation`` is the value of :attr:`generation` when the batch was taken."""
        waiting = self._waiting
        while waiting and waiting[0].done():
            waiting.popleft()
        previous = waiting[-1] if waiting else None
        waiting.append(
            asyncio.create_task(self._confirm(consumer, records, writes, previous, generation))
        )
        while waiting and (len(waiting) > self.max_unconfirmed or self.committer.stopping):
            await self._oldest_done()
        if self.committer.stopping:
            await self.committer.flush()

    async def drain(self) -> None:
        """Wait for every batch handed over, then commit what they confirmed."""
        while self._waiting:
            await self._oldest_done()
        await self.committer.flush()

    async def _oldest_done(self) -> None:
        # ``drain`` (at shutdown) and a handler's ``hand_over`` may wait at once: only the
        # one that finds the oldest task still first removes it
        task = self._waiting[0]
        await asyncio.wait([task])
        if self._waiting and self._waiting[0] is task:
            self._waiting.popleft()

    async def _confirm(
        self,
        consumer: Any,
        records: Any,
        writes: list[Any],
        previous: asyncio.Task[None] | None,
        generation: int,
    ) -> None:
        failure: Exception | None = None
        try:
            await asyncio.gather(*writes)
        except Exception as exc:
            failure = exc
        if previous is not None:
            await asyncio.wait([previous])  # in order: never past an earlier batch
        if generation != self.generation:
            return  # an earlier batch was rewound: this one is read again after it
        if failure is not None:
            self.generation += 1
            self.log.error(
                "Schreiben nicht bestätigt, Stapel wird neu gelesen / "
                "writes not confirmed, the batch is read again: %r",
                failure,
            )
            try:
                rewind(consumer, records)
            except Exception:  # partitions taken away meanwhile: their new owner reads them
                self.log.warning(
                    "Zurücksetzen nicht möglich (Partitionen neu verteilt) / could not seek "
                    "back (partitions reassigned); they are read from the last commit"
                )
            return
        await self.committer.commit(consumer, batch_offsets(records))


def batch_offsets(records: Any) -> dict[Any, int]:
    """The next offset to read per partition after ``records`` (aiokafka ``ConsumerRecord``s)."""
    from aiokafka import TopicPartition

    out: dict[Any, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        if r.offset + 1 > out.get(tp, -1):
            out[tp] = r.offset + 1
    return out


def rewind(consumer: Any, records: Any) -> None:
    """Seek each partition of a failed batch back to its first record, so it is read again
    (what FastStream's nack does; a manually committed consumer must do it itself)."""
    from aiokafka import TopicPartition

    first: dict[Any, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        if tp not in first or r.offset < first[tp]:
            first[tp] = r.offset
    for tp, offset in first.items():
        consumer.seek(tp, offset)


class KafkaUnreachableError(SystemExit):
    """Raised with a ready-to-print, German-first message when the broker never answered."""


async def wait_for_kafka(
    settings: KafkaSettings,
    service: str,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Wait until a bootstrap server answers a metadata request; returns the attempts made.

    Why: at start FastStream lets aiokafka's connection error escape as a traceback, and a
    service that exits while the broker is still booting (compose, a restarted node) is put
    in a restart loop. Waiting with one clear line per attempt is what an operator can read;
    past ``STORMWATCH_KAFKA_CONNECT_TIMEOUT_S`` the service exits saying what to check.
    """
    # aiokafka logs every refused connection as an ERROR with its own wording; our line says
    # it once per attempt, in the crisis team's language, and what happens next.
    client_log = logging.getLogger("aiokafka")
    previous_level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        return await _bootstrap_loop(settings, service, sleep, clock)
    finally:
        client_log.setLevel(previous_level)


async def _bootstrap_loop(
    settings: KafkaSettings,
    service: str,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float],
) -> int:
    from aiokafka.client import AIOKafkaClient
    from aiokafka.errors import KafkaError

    log = logging.getLogger(f"stormwatch.{service}")
    servers = settings.bootstrap_servers
    limit = settings.connect_timeout_s
    started = clock()
    delay = 0.5
    attempt = 0
    while True:
        attempt += 1
        client = AIOKafkaClient(bootstrap_servers=servers.split(","), client_id=service)
        try:
            await client.bootstrap()
        except (KafkaError, OSError) as exc:
            waited = clock() - started
            if limit and waited + delay > limit:
                raise KafkaUnreachableError(
                    f"Kafka unter {servers} nicht erreichbar (seit {waited:.0f} s, "
                    f"{attempt} Versuche) / Kafka at {servers} unreachable for {waited:.0f} s "
                    f"({attempt} attempts): {exc}\n"
                    "Prüfen: läuft der Broker, stimmt STORMWATCH_KAFKA_BOOTSTRAP_SERVERS? "
                    "Länger warten: STORMWATCH_KAFKA_CONNECT_TIMEOUT_S. / Check that the "
                    "broker runs and STORMWATCH_KAFKA_BOOTSTRAP_SERVERS is right; wait longer "
                    "with STORMWATCH_KAFKA_CONNECT_TIMEOUT_S."
                ) from None
            log.warning(
                "Kafka unter %s noch nicht erreichbar, neuer Versuch in %.1f s "
                "/ Kafka at %s not reachable yet, retrying in %.1f s (%s)",
                servers,
                delay,
                servers,
                delay,
                type(exc).__name__,
            )
            await sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        finally:
            await client.close()
        if attempt > 1:
            log.info("Kafka erreichbar / Kafka reachable after %d attempts", attempt)
        return attempt


GC_THRESHOLDS = (50_000, 20, 100)
"""Collector thresholds of a running service (CPython's defaults: 700, 10, 10)."""


def tune_gc() -> None:
    """Collect cycles less often: a service allocates a few dozen short-lived objects per
    message (pydantic models, dicts, tuples) and almost none of them form cycles, so at the
    default threshold of 700 allocations the collector ran every few dozen messages and took
    8 % of the sentiment service's CPU in the pipeline benchmark (2026-12-02: 1.52 s of
    18.5 s; at these thresholds 0.05 s, 5 % less CPU per mention)."""
    gc.set_threshold(*GC_THRESHOLDS)


async def _freeze_startup_objects() -> None:
    """Objects alive once startup is done (model, lexicon, taggers, settings) live as long as
    the process: moved out of the collector's generations, full collections skip them."""
    gc.collect()
    gc.freeze()


def serve(app: Any, settings: KafkaSettings, service: str) -> None:
    """Run a FastStream app once the broker answers (see ``wait_for_kafka``)."""
    tune_gc()
    app.after_startup(_freeze_startup_objects)

    async def main() -> None:
        await wait_for_kafka(settings, service)
        await app.run()

    asyncio.run(main())


def make_broker(settings: KafkaSettings, client_id: str, **extra: Any) -> KafkaBroker:
    logger = logging.getLogger(f"stormwatch.{client_id}.broker")
    return KafkaBroker(
        settings.bootstrap_servers.split(","),
        client_id=client_id,
        logger=logger,
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
        **{**producer_config(settings), **extra},
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
