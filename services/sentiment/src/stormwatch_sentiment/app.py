"""Builds the sentiment service: micro-batches of raw mentions in, scored mentions out."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from faststream import FastStream
from faststream.middlewares import AckPolicy
from stormwatch_shared import metrics
from stormwatch_shared.codec import DecodeError, FastDecoder, FastEncoder
from stormwatch_shared.events import MentionReceived, MentionScored
from stormwatch_shared.observability import instrument
from stormwatch_shared.service import (
    ConfirmedBatches,
    KeyedSender,
    OffsetCommitter,
    current_message,
    make_broker,
    publish_dead_letter,
    raw_body,
    rewind,
)
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import MENTIONS_RAW, MENTIONS_SCORED

from stormwatch_sentiment.scoring import Scorer
from stormwatch_sentiment.settings import SentimentSettings

log = logging.getLogger("stormwatch.sentiment")


def load_model(settings: SentimentSettings) -> Any:
    from stormwatch_sentiment.engines import load_default, load_engine

    if settings.engine == "default":
        return load_default()
    return load_engine(settings.engine, settings.model_path, settings.threads)


def build_app(
    settings: SentimentSettings, kafka: KafkaSettings, model: Any | None = None
) -> FastStream:
    from stormwatch_sentiment.domain.topics import TopicTagger

    broker = make_broker(kafka, "stormwatch-sentiment")
    app = FastStream(broker, logger=log)
    raw_topic, scored_topic = kafka.topic(MENTIONS_RAW), kafka.topic(MENTIONS_SCORED)
    state: dict[str, Scorer] = {}
    sender = KeyedSender(broker)
    committer = OffsetCommitter(log)
    confirmed = ConfirmedBatches(committer, log)
    in_thread = settings.score_in_thread
    # msgspec in and out (same rules and bytes as the pydantic models: see their docstrings);
    # the replay builds the models themselves from the same Scorer.fields
    decode_received = FastDecoder(MentionReceived)
    scored_out = FastEncoder(MentionScored)
    obs = instrument(app, broker, "sentiment", kafka=kafka, lag=[(settings.group_id, MENTIONS_RAW)])
    obs.require("model")
    metrics.prepare("sentiment", topics=[MENTIONS_RAW])

    @app.on_startup
    async def _load() -> None:
        # Loaded once per process, before consuming: a model that fails to load must stop
        # the service at start, not on the first message.
        tagger = (
            TopicTagger.from_file(settings.topics_file)
            if settings.topics_file
            else TopicTagger.default()
        )
        state["scorer"] = Scorer(model if model is not None else load_model(settings), tagger)
        log.info("Modell geladen / model loaded: %s", state["scorer"].model.model_id)
        log.info(
            "Bewertung %s / scoring %s (SENTIMENT_SCORING_THREAD=%s)",
            "im Worker-Thread" if in_thread else "in der Ereignisschleife",
            "in a worker thread" if in_thread else "on the event loop",
            settings.scoring_thread,
        )
        metrics.record_model("sentiment", str(state["scorer"].model.model_id), settings.engine)
        obs.mark_ready("model")

    @broker.subscriber(
        raw_topic,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_size,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        # committed by ``confirmed`` once the batch's writes are confirmed (see handle)
        ack_policy=AckPolicy.MANUAL,
        decoder=raw_body,
    )
    async def handle(bodies: list[bytes]) -> None:
        message = current_message(broker)
        records = message.raw_message
        generation = confirmed.generation
        try:
            writes = await _score_batch(bodies, records)
        except BaseException:
            rewind(message.consumer, records)  # read again, as a nack would
            raise
        # The batch's offsets are committed once its writes are confirmed; meanwhile the
        # next batch is scored.
        await confirmed.hand_over(message.consumer, records, writes, generation)

    @app.on_shutdown
    async def _commit_on_stop() -> None:
        committer.stopping = True  # the batch still in flight commits before it returns
        try:
            async with asyncio.timeout(5):
                await confirmed.drain()
        except Exception:  # read again at the next start: nothing is lost
            log.exception("Offsets beim Stopp nicht bestätigt / final offset commit failed")

    async def _score_batch(bodies: list[bytes], records: Any) -> list[Any]:
        good: list[Any] = []
        origin: list[tuple[bytes, Any]] = []
        pending = []
        metrics.record_batch("sentiment", len(bodies))
        for body, record in zip(bodies, records, strict=True):
            try:
                good.append(decode_received.struct(body))
                origin.append((body, record))
            except DecodeError as exc:
                pending.append(
                    await publish_dead_letter(
                        broker, "sentiment", raw_topic, body, record, str(exc)
                    )
                )
        if good:
            started = time.perf_counter()
            score = functools.partial(
                state["scorer"].score_or_refuse,
                good,
                scored_out.validate,
                scored_out.validate_many,
            )
            # A thread only where a batch takes long (SENTIMENT_SCORING_THREAD): with the
            # default model the hand-over and the GIL going back and forth between the
            # thread and the event loop cost more than the scoring itself saved the loop.
            scored, refused = await asyncio.to_thread(score) if in_thread else score()
            metrics.record_scored(scored, time.perf_counter() - started, settings.engine)
            for i, reason in refused:
                body, record = origin[i]
                pending.append(
                    await publish_dead_letter(broker, "sentiment", raw_topic, body, record, reason)
                )
            encode = scored_out.encode
            pending.extend(
                await sender.send_many(
                    [(encode(event), event.target_id.encode()) for event in scored], scored_topic
                )
            )
        return pending

    return app


def run_service() -> None:
    """Entry point for ``stormwatch run sentiment`` and ``python -m stormwatch_sentiment``."""
    from stormwatch_shared.service import configure_logging, serve
    from stormwatch_shared.settings import load_settings

    configure_logging("sentiment")
    kafka = load_settings(KafkaSettings)
    serve(build_app(load_settings(SentimentSettings), kafka), kafka, "sentiment")
