"""The one loop every live source runs in.

Guarantees, whatever the network:
- **No loss.** The resume cursor is persisted only after Kafka acknowledged every mention
  delivered before it (``checkpoint``), and after any reconnect the gap is backfilled from
  the last cursor the runner processed. A crash therefore replays, never skips.
- **No doubles.** Replays (backfill overlapping the stream, restarts) are dropped by a
  persistent seen-set keyed by canonical mention id; ids are marked seen only once Kafka
  has them, so a crash between publish and mark repeats a write (deduplicated downstream
  by the deterministic event id) rather than losing one.
- **Polite.** Reconnects follow the connector's backoff policy (X's rules by default);
  the delay is computed and slept through an injected ``sleep``, so tests assert the exact
  sequence without waiting.
- **Never silently stuck.** No data (keep-alives included) for the connector's timeout
  means reconnect. Malformed payloads are counted and dead-lettered, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from stormwatch_shared.events import DeadLettered, Mention
from stormwatch_shared.kafka import dead_letter
from stormwatch_shared.targets import TargetMatcher

from stormwatch_listener import metrics
from stormwatch_listener.domain.backoff import Backoff, FailureKind
from stormwatch_listener.domain.matching import match_ids
from stormwatch_listener.domain.normalize import NormalizeError
from stormwatch_listener.sources.base import (
    BudgetExhausted,
    Connector,
    FatalSourceError,
    RawEvent,
    SourceError,
)
from stormwatch_listener.state import StateStore

log = logging.getLogger("stormwatch.listener.runner")

SEEN_TTL_S = 8 * 24 * 3600.0
"""Longer than any replay window we use (X recent search: 7 days; Jetstream: ~3 days)."""
BATCH = 25
"""Events handled together; also the getProfiles batch size on Bluesky."""

_END = object()
_STOP = object()


class _Stall(Exception):
    pass


DeadLetterSink = Callable[[DeadLettered], Awaitable[None]]


class SourceRunner:
    """A ``CheckpointedSource`` around one connector."""

    def __init__(
        self,
        connector: Connector,
        matcher: TargetMatcher,
        store: StateStore,
        *,
        dead_letters: DeadLetterSink,
        dlq_source_topic: str = "mentions.raw.v1",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        seen_ttl_s: float = SEEN_TTL_S,
        cursor_every_s: float = 1.0,
    ) -> None:
        self.connector = connector
        self.name = connector.name
        self.matcher = matcher
        self.store = store
        self._dead_letters = dead_letters
        self._dlq_source_topic = dlq_source_topic
        self._clock = clock
        self._sleep = sleep
        self._seen_ttl_s = seen_ttl_s
        self._cursor_every_s = cursor_every_s
        self._stop = asyncio.Event()
        self._queue: asyncio.Queue[Any] | None = None
        self._cursor: str | None = None
        self._ready_cursor: str | None = None
        self._last_save = 0.0
        self._unacked: list[Mention] = []
        self._inflight: set[str] = set()
        self.delays: list[tuple[str, float]] = []
        """Every wait the runner decided on, as (reason, seconds): for logs and tests."""
        self.counts = {
            "received": 0,
            "dead_letters": 0,
            "duplicates": 0,
            "unmatched": 0,
            "reconnects": 0,
            "published": 0,
        }

    # --- public ------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        if self._queue is not None:
            self._queue.put_nowait(_STOP)

    async def checkpoint(self) -> None:
        """Called by the publisher once Kafka acknowledged everything yielded so far."""
        if self._unacked:
            ids = [m.id for m in self._unacked]
            now = self._clock()
            self.store.mark_seen(ids, now.timestamp() + self._seen_ttl_s)
            self._inflight.difference_update(ids)
            metrics.PUBLISHED.labels(self.name).inc(len(ids))
            self.counts["published"] += len(ids)
            newest = max(m.created_at for m in self._unacked)
            metrics.LAG.labels(self.name).set(max(0.0, (now - newest).total_seconds()))
            self._unacked.clear()
        self._save_cursor(force=False)

    async def mentions(self) -> AsyncIterator[Mention]:
        self._cursor = self.store.load_cursor(self.name)
        self.store.purge(self._clock().timestamp())
        backoff = Backoff(self.connector.policy)
        started = False
        log.info("%s: Start, Cursor / start, cursor %s", self.name, self._cursor)
        try:
            while not self._stop.is_set():
                queue: asyncio.Queue[Any] = asyncio.Queue()
                self._queue = queue
                pump: asyncio.Task[None] | None = None
                reason: FailureKind | None = None
                retry_after: float | None = None
                budget: BudgetExhausted | None = None
                try:
                    if not started:
                        await self.connector.start()
                        started = True
                    pump = asyncio.create_task(self._pump(queue, self._cursor))
                    if self._cursor is not None:
                        async for m in self._backfill():
                            yield m
                    while True:
                        batch = await self._next_batch(queue, backoff)
                        if batch is None:
                            return
                        async for m in self._handle(batch):
                            yield m
                except SourceError as exc:
                    reason, retry_after = exc.kind, exc.retry_after_s
                    log.warning("%s: %s (%s)", self.name, exc, exc.kind)
                except _Stall:
                    reason = "network"
                    log.warning(
                        "%s: keine Daten seit %.0f s, neu verbinden / no data, reconnecting",
                        self.name,
                        self.connector.no_data_timeout_s,
                    )
                except BudgetExhausted as exc:
                    budget = exc
                except FatalSourceError:
                    metrics.ERRORS.labels(self.name).inc()
                    log.error("%s: nicht behebbar / fatal", self.name)
                    raise
                finally:
                    if pump is not None:
                        pump.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await pump
                    self._queue = None
                if budget is not None:
                    await self._wait_for_budget(budget)
                    continue
                if self._stop.is_set() or reason is None:
                    break
                delay = backoff.next_delay(reason, retry_after)
                self.delays.append((reason, delay))
                metrics.ERRORS.labels(self.name).inc()
                metrics.RECONNECTS.labels(self.name).inc()
                self.counts["reconnects"] += 1
                log.info("%s: neuer Versuch in %.2f s / retry in %.2f s", self.name, delay, delay)
                await self._sleep(delay)
        finally:
            if not self._unacked:
                self._save_cursor(force=True)
            await self.connector.close()

    # --- internals ---------------------------------------------------------------------

    async def _pump(self, queue: asyncio.Queue[Any], cursor: str | None) -> None:
        """Reads the connection into a queue, so the watchdog can time out a read without
        cancelling (and thereby closing) the connector's generator mid-event."""
        try:
            async for event in self.connector.stream(cursor):
                await queue.put(event)
            await queue.put(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await queue.put(exc)

    async def _next_batch(
        self, queue: asyncio.Queue[Any], backoff: Backoff
    ) -> list[RawEvent] | None:
        timeout = self.connector.no_data_timeout_s
        try:
            item = await asyncio.wait_for(queue.get(), timeout)
        except TimeoutError:
            raise _Stall from None
        batch: list[RawEvent] = []
        while True:
            if item is _STOP:
                return None
            if item is _END:
                if batch:
                    queue.put_nowait(_END)
                    return batch
                raise SourceError("network", "Verbindung vom Server beendet / stream closed")
            if isinstance(item, BaseException):
                if batch:
                    queue.put_nowait(item)
                    return batch
                raise item
            backoff.reset()
            batch.append(item)
            if len(batch) >= BATCH or queue.empty():
                return batch
            item = queue.get_nowait()

    async def _backfill(self) -> AsyncIterator[Mention]:
        batch: list[RawEvent] = []
        n = 0
        async for event in self.connector.backfill(self._cursor):
            batch.append(event)
            n += 1
            if len(batch) >= BATCH:
                async for m in self._handle(batch):
                    yield m
                batch = []
            if self._stop.is_set():
                return
        if batch:
            async for m in self._handle(batch):
                yield m
        if n:
            log.info("%s: Lücke nachgeholt / gap backfilled: %d events", self.name, n)

    async def _handle(self, batch: list[RawEvent]) -> AsyncIterator[Mention]:
        last_cursor: str | None = None
        candidates: list[Mention] = []
        ids: set[str] = set()
        for event in batch:
            if event.cursor is not None:
                last_cursor = event.cursor
            if event.kind != "post":
                continue
            self.counts["received"] += 1
            metrics.RECEIVED.labels(self.name).inc()
            try:
                mention = self.connector.normalize(event)
            except NormalizeError as exc:
                await self._dead_letter(event, str(exc))
                continue
            if mention is None:
                continue
            if mention.id in ids or mention.id in self._inflight:
                self._duplicate()
                continue
            ids.add(mention.id)
            candidates.append(mention)
        if candidates:
            already = self.store.seen([m.id for m in candidates], self._clock().timestamp())
            fresh = []
            for m in candidates:
                if m.id in already:
                    self._duplicate()
                elif not match_ids(m, self.matcher):
                    self.counts["unmatched"] += 1
                else:
                    fresh.append(m)
            if fresh:
                for m in await self.connector.enrich(fresh):
                    self._inflight.add(m.id)
                    self._unacked.append(m)
                    yield m
        if last_cursor is not None:
            self._cursor = last_cursor
            self._ready_cursor = last_cursor
            if not self._unacked:
                self._save_cursor(force=False)

    def _duplicate(self) -> None:
        self.counts["duplicates"] += 1
        metrics.DUPLICATES.labels(self.name).inc()

    async def _dead_letter(self, event: RawEvent, reason: str) -> None:
        self.counts["dead_letters"] += 1
        metrics.DEAD_LETTERS.labels(self.name).inc()
        metrics.ERRORS.labels(self.name).inc()
        log.warning("%s: fehlerhafte Nachricht / malformed payload: %s", self.name, reason)
        await self._dead_letters(
            dead_letter(
                service="stormwatch-listener",
                source_topic=self._dlq_source_topic,
                reason=f"{self.name}: {reason}",
                payload=event.payload,
            )
        )

    def _save_cursor(self, *, force: bool) -> None:
        """Persist the cursor whose mentions are all acknowledged; at most once a second
        unless forced (an older saved cursor is always safe, only a newer one is not)."""
        if self._ready_cursor is None or self._unacked:
            return
        now = time.monotonic()
        if not force and now - self._last_save < self._cursor_every_s:
            return
        self.store.save_cursor(self.name, self._ready_cursor)
        self._ready_cursor = None
        self._last_save = now

    async def _wait_for_budget(self, exc: BudgetExhausted) -> None:
        metrics.BUDGET_EXHAUSTED.labels(self.name).set(1)
        wait = max(0.0, (exc.resume_at - self._clock()).total_seconds())
        log.error(
            "%s: Lesebudget aufgebraucht (%d/%d), Pause bis %s / read budget used up, "
            "paused until %s",
            self.name,
            exc.used,
            exc.limit,
            exc.resume_at.isoformat(),
            exc.resume_at.isoformat(),
        )
        self.delays.append(("budget", wait))
        await self._sleep(wait)
        metrics.BUDGET_EXHAUSTED.labels(self.name).set(0)
