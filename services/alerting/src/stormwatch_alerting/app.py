"""Builds the alerting service: detection (scored mentions → alerts) and delivery
(alerts → people), two consumers in one process so each can be scaled and replayed alone."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from faststream import FastStream
from faststream.kafka import KafkaMessage
from faststream.middlewares import AckPolicy
from stormwatch_shared import metrics
from stormwatch_shared.codec import DecodeError, FastDecoder, decode, encode
from stormwatch_shared.events import (
    CrisisAlertEscalated,
    CrisisAlertRaised,
    CrisisAlertResolved,
    MentionScored,
)
from stormwatch_shared.observability import instrument
from stormwatch_shared.service import (
    KeyedSender,
    current_message,
    make_broker,
    publish_dead_letter,
    raw_body,
)
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import ALERTS, DETECTOR_CHANGELOG, MENTIONS_SCORED

from stormwatch_alerting.adapters import RecentPosts, alert_event, observation
from stormwatch_alerting.delivery import metrics as delivery_metrics
from stormwatch_alerting.delivery.notifiers import Notifier
from stormwatch_alerting.delivery.service import Delivery
from stormwatch_alerting.domain.dedup import SeenIds
from stormwatch_alerting.domain.detector import Detector, preset
from stormwatch_alerting.domain.figures import BucketFigures
from stormwatch_alerting.settings import AlertingSettings
from stormwatch_alerting.state import DetectorStateStore, RestoreOnAssign

log = logging.getLogger("stormwatch.alerting")

IDLE_FLUSH_S = 0.1
"""No batch for this long means the consumer has caught up: its states are written then.

Why this short: under load a batch follows the last one within 24 ms (median) and 150 ms
(99th percentile) in the pipeline bench (2026-12-03): a pause this long came six times in
a burst of 100,000 mentions, each costing a flush (67-160 ms of CPU for the bench's 300
targets), while every burst's end waits for it before the offsets are committed and the
lag reads zero (0.45-0.92 s after sentiment's commit with a 0.25 s pause found by a poll,
0.19-0.32 s now)."""

CHANGELOG_CHUNK_BYTES = 1 << 20
"""A flush encodes and hands over the states this many bytes at a time.

Why: a state carries the target's author memory (27 kB on average for the bench's 300
targets, 8.2 MB per flush). Encoded all at once before the writes, a flush held every
state twice (the encoded list and the producer's batches) and raised the service's peak
RSS from 138-142 to 170-178 MB (``make bench``, 2026-12-04); the producer takes a chunk
only once its earlier batches for the same partitions have left, so memory stays bounded
by the chunk however many targets there are."""

ALERT_TYPES: dict[str, Any] = {
    "CrisisAlertRaised": CrisisAlertRaised,
    "CrisisAlertEscalated": CrisisAlertEscalated,
    "CrisisAlertResolved": CrisisAlertResolved,
}


def decode_alert(body: bytes) -> Any:
    import orjson

    try:
        kind = orjson.loads(body).get("type") if body[:1] == b"{" else None
    except orjson.JSONDecodeError:
        kind = None
    model = ALERT_TYPES.get(kind or "")
    if model is None:
        raise DecodeError(f"unknown alert event type {kind!r}")
    return decode(body, model)


def build_app(
    settings: AlertingSettings,
    kafka: KafkaSettings,
    notifiers: list[Notifier] | None = None,
) -> FastStream:
    broker = make_broker(kafka, "stormwatch-alerting")
    app = FastStream(broker, logger=log)
    scored_topic, alerts_topic = kafka.topic(MENTIONS_SCORED), kafka.topic(ALERTS)
    detector = Detector(preset(settings.sensitivity))
    seen_mentions = SeenIds()
    # msgspec for the hot path, pydantic for what it refuses (see FastDecoder): validating
    # each scored mention in pydantic was ~17 % of this service's CPU in the pipeline bench
    decode_scored = FastDecoder(MentionScored)
    recent_posts = RecentPosts()
    changelog_topic = kafka.topic(DETECTOR_CHANGELOG)
    store = DetectorStateStore(detector, kafka.bootstrap_servers, changelog_topic)
    seen_alerts = SeenIds(20_000)
    delivery = Delivery(settings, notifiers)
    instrument(
        app,
        broker,
        "alerting",
        kafka=kafka,
        lag=[(settings.group_id, MENTIONS_SCORED), (settings.delivery_group_id, ALERTS)],
    )
    metrics.prepare("alerting", topics=[MENTIONS_SCORED, ALERTS])
    if getattr(delivery, "legacy", False):
        channels = [getattr(n, "channel", "other") for n in delivery.notifiers]
        metrics.prepare_notifications(delivery_metrics.NOTIFICATIONS, channels)
    figures = metrics.TargetFigures(BucketFigures(detector.config.bucket_s))

    @app.on_startup
    async def _start_delivery() -> None:
        await delivery.start()

    @app.on_shutdown
    async def _stop_delivery() -> None:
        await delivery.stop()

    sender = KeyedSender(broker)
    # One batch or flush at a time: the idle flush below must not interleave with a batch.
    detect_lock = asyncio.Lock()
    last_consumer: list[Any] = []
    batch_done = asyncio.Event()  # set after each batch: the idle flush's clock restarts

    @broker.subscriber(
        scored_topic,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=20,
        auto_offset_reset="earliest",
        # Offsets are committed by ``_flush`` (states first, then the offset), not per batch.
        ack_policy=AckPolicy.MANUAL,
        decoder=raw_body,
        listener=RestoreOnAssign(store, scored_topic),
    )
    async def detect(bodies: list[bytes]) -> None:
        message = current_message(broker)
        async with detect_lock:
            last_consumer[:] = [message.consumer]
            try:
                await _detect(bodies, message)
            except BaseException:
                # Nothing consumed since the last commit may be skipped: rewind each
                # partition to its first uncommitted record (records already applied are
                # recognised by their offsets and not counted twice).
                for partition, offset in store.rewind_points().items():
                    message.consumer.seek(TopicPartition(scored_topic, partition), offset)
                raise

    earliest = settings.min_event_time.timestamp()  # fixed for the process

    async def _detect(bodies: list[bytes], message: KafkaMessage) -> None:
        pending = []
        metrics.record_batch("alerting", len(bodies))
        await store.ensure_restored({r.partition for r in message.raw_message})
        latest = time.time() + settings.max_future_s
        for body, record in zip(bodies, message.raw_message, strict=True):
            store.consumed(record.partition, record.offset)
            try:
                event = decode_scored(body)
                _check_event_time(event.mention.created_at.timestamp(), earliest, latest)
            except DecodeError as exc:
                pending.append(
                    await publish_dead_letter(
                        broker, "alerting", scored_topic, body, record, str(exc)
                    )
                )
                continue
            if not seen_mentions.first_time(event.event_id) or store.already_applied(
                event.target_id, record.partition, record.offset
            ):
                continue
            obs = observation(event)
            if detector.quotable(obs):
                recent_posts.add(event)
            figures.observe(obs.target_id, obs.at, obs.author_id, obs.label == "negative")
            transitions = detector.observe(obs)
            store.mark(obs.target_id, record.partition, record.offset)
            for transition in transitions:
                alert = alert_event(
                    recent_posts.enrich(transition),
                    target_name=event.target_name,
                    target_kind=event.target_kind,
                    drill=event.drill,
                )
                metrics.record_alert(alert)
                pending.append(
                    await sender.send(encode(alert), alerts_topic, alert.target_id.encode())
                )
        # Alerts leave with every batch, whatever the flush: they must not wait for it.
        await asyncio.gather(*pending)
        now = time.monotonic()
        if store.flush_due(now, settings.changelog_flush_s):
            await _flush(message.consumer, now)
        batch_done.set()
        metrics.record_event_time("alerting", figures.newest)

    async def _flush(consumer: Any, now: float) -> None:
        targets = store.dirty_targets()
        writes = []
        for chunk in store.encoded_chunks(targets, CHANGELOG_CHUNK_BYTES):
            writes.extend(await sender.send_many(chunk, changelog_topic))
        await asyncio.gather(*writes)
        # The consumer offset is committed only after alerts and states are durable, and
        # explicitly: the consumer's own position may already include a fetched batch that
        # is still waiting for ``detect_lock``.
        offsets = store.commit_offsets()
        if offsets:
            await consumer.commit({TopicPartition(scored_topic, p): o for p, o in offsets.items()})
        store.committed(targets, now)
        for tid in targets:
            figures.publish_status(tid, detector.status(tid))

    async def _flush_when_idle() -> None:
        """Once the input pauses (no batch for ``IDLE_FLUSH_S``), write what is dirty at
        once: states are durable and the lag reads zero within a fraction of a second of
        catching up, while under continuous load the states are written only every
        ``changelog_flush_s`` (rewriting every busy target's state each second was ~8 % of
        this service's CPU in the pipeline bench, 2026-12-03).

        It waits for exactly ``IDLE_FLUSH_S`` after the latest batch instead of polling:
        a poll every half period left the end of a burst uncommitted for 1 to 1.5 periods.
        """
        while True:
            await batch_done.wait()
            batch_done.clear()
            try:
                async with asyncio.timeout(IDLE_FLUSH_S):
                    await batch_done.wait()
                continue  # another batch within the period: the wait starts again
            except TimeoutError:
                pass
            if detect_lock.locked():
                continue  # a batch is running: its end restarts the wait
            async with detect_lock:
                now = time.monotonic()
                if store.flush_due(now, settings.changelog_flush_s, force=True):
                    try:
                        await _flush(last_consumer[0], now)
                    except Exception:  # tried again in a second, or by the next batch
                        log.exception("Zustand nicht gesichert / detector state flush failed")
                        await asyncio.sleep(1.0)  # not a tight loop while Kafka is away
                        batch_done.set()

    idle_task: list[asyncio.Task[None]] = []

    @app.after_startup
    async def _start_idle_flush() -> None:
        idle_task.append(asyncio.create_task(_flush_when_idle()))

    @app.on_shutdown
    async def _final_flush() -> None:
        """Graceful stop: finish the batch in flight, write the states, commit."""
        for task in idle_task:
            task.cancel()
        if not last_consumer:
            return
        try:
            async with asyncio.timeout(10):
                async with detect_lock:
                    now = time.monotonic()
                    if store.flush_due(now, settings.changelog_flush_s, force=True):
                        await _flush(last_consumer[0], now)
        except Exception:  # redone from the last commit at the next start: nothing is lost
            log.exception("Zustand beim Stopp nicht gesichert / final state flush failed")

    @broker.subscriber(
        alerts_topic,
        group_id=settings.delivery_group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=raw_body,
    )
    async def notify(body: bytes) -> None:
        try:
            alert = decode_alert(body)
        except DecodeError as exc:
            record = current_message(broker).raw_message
            await (
                await publish_dead_letter(broker, "alerting", alerts_topic, body, record, str(exc))
            )
            return
        if not seen_alerts.first_time(alert.event_id):
            return
        outcomes = await delivery.handle(alert)
        if getattr(delivery, "legacy", False):  # the routed pipeline counts its own sends
            metrics.record_notifications(outcomes, delivery_metrics.NOTIFICATIONS, alert.drill)

    return app


def _check_event_time(at: float, earliest: float, latest: float) -> None:
    """Refuse a mention dated past ``latest`` (the clock plus ``ALERTING_MAX_FUTURE_S``) or
    before ``earliest`` (``ALERTING_MIN_EVENT_TIME``).

    Why: the detector runs on event time and closes every bucket up to the newest mention
    it has seen. One post dated 2099 (a mis-set feed, a forged message) closed 73 years of
    buckets (about 1.1 s per year, measured 2026-12-02), stalled the partition meanwhile,
    and left its target's clock in 2099, where every real mention after it is late. A new
    target whose first post is dated 1970 (a missing date read as zero) does the same walk
    forwards at its next post: 35 s for a 1990 date, measured 2026-12-02.
    """
    if at > latest:
        ahead = at - latest
        raise DecodeError(
            f"event time {datetime.fromtimestamp(at, UTC).isoformat()} is {ahead:.0f} s past "
            "this service's clock plus ALERTING_MAX_FUTURE_S; check the source's timestamps"
        )
    if at < earliest:
        raise DecodeError(
            f"event time {datetime.fromtimestamp(at, UTC).isoformat()} is before "
            f"ALERTING_MIN_EVENT_TIME ({datetime.fromtimestamp(earliest, UTC).isoformat()}); "
            "a date that old is usually a missing one read as zero: check the source's "
            "date field"
        )


def run_service() -> None:
    """Entry point for ``stormwatch run alerting`` and ``python -m stormwatch_alerting``."""
    from stormwatch_shared.service import configure_logging, serve
    from stormwatch_shared.settings import load_settings

    configure_logging("alerting")
    kafka = load_settings(KafkaSettings)
    serve(build_app(load_settings(AlertingSettings), kafka), kafka, "alerting")
