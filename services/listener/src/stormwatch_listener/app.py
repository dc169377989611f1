"""Builds the listener's FastStream app: a source loop publishing ``MentionReceived``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from stormwatch_shared.codec import encode
from stormwatch_shared.scenario import ReadProblems
from stormwatch_shared.service import make_broker
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.targets import TargetMatcher, load_targets
from stormwatch_shared.topics import MENTIONS_RAW

from stormwatch_listener.domain.matching import received_events
from stormwatch_listener.settings import ListenerSettings
from stormwatch_listener.sources.base import CheckpointedSource, MentionSource
from stormwatch_listener.sources.replay import ReplaySource

log = logging.getLogger("stormwatch.listener")

IN_FLIGHT = 2000
"""Unconfirmed writes allowed before waiting: bounds memory, keeps the producer batching."""


async def publish_source(
    broker: KafkaBroker,
    source: MentionSource,
    matcher: TargetMatcher,
    topic: str,
    *,
    drill: bool = False,
) -> dict[str, int]:
    """Publish every matching mention keyed by target; returns counts for the summary.

    A replay is written with many writes in flight (fast). A live source (one with
    ``checkpoint``) waits for Kafka's acknowledgement of each mention and then tells the
    source, which only then moves its resume cursor: a crash can repeat, never lose.
    """
    pending: list[Any] = []
    counts = {"mentions": 0, "published": 0, "unmatched": 0}
    started = time.monotonic()
    checkpoint = source.checkpoint if isinstance(source, CheckpointedSource) else None
    async for mention in source.mentions():
        counts["mentions"] += 1
        events = received_events(mention, matcher, drill=drill)
        if not events:
            counts["unmatched"] += 1
        for event in events:
            fut = await broker.publish(
                encode(event),
                topic,
                key=event.target_id.encode(),
                timestamp_ms=int(event.occurred_at.timestamp() * 1000),
                no_confirm=True,
            )
            pending.append(fut)
            counts["published"] += 1
        if checkpoint is not None:
            await asyncio.gather(*pending)
            pending.clear()
            await checkpoint()
        elif len(pending) >= IN_FLIGHT:
            await asyncio.gather(*pending)
            pending.clear()
        if counts["mentions"] % 5000 == 0:
            log.info("%d Erwähnungen gelesen / mentions read", counts["mentions"])
    await asyncio.gather(*pending)
    log.info(
        "Fertig / done: %d mentions, %d events published, %d matched no target (%.1f s)",
        counts["mentions"],
        counts["published"],
        counts["unmatched"],
        time.monotonic() - started,
    )
    return counts


def build_app(settings: ListenerSettings, kafka: KafkaSettings) -> FastStream:
    broker = make_broker(kafka, "stormwatch-listener")
    app = FastStream(broker, logger=log)
    matcher = TargetMatcher(load_targets(settings.watch_list))
    problems = ReadProblems()
    assert settings.replay_dir is not None
    source = ReplaySource(settings.replay_dir, settings.speed_factor, problems)
    tasks: list[asyncio.Task[None]] = []

    async def run_source() -> None:
        try:
            await publish_source(
                broker, source, matcher, kafka.topic(MENTIONS_RAW), drill=settings.drill
            )
            for message in problems.messages:
                log.warning("übersprungen / skipped: %s", message)
            if problems.count:
                log.warning("%d fehlerhafte Zeilen übersprungen / malformed lines", problems.count)
        except Exception:
            log.exception("Quelle abgebrochen / source failed")
            raise
        finally:
            if settings.exit_at_end:
                app.exit()

    @app.after_startup
    async def _start() -> None:
        tasks.append(asyncio.create_task(run_source()))

    @app.on_shutdown
    async def _stop() -> None:
        for task in tasks:
            task.cancel()

    return app


def run_service() -> None:
    """Entry point for ``stormwatch run listener`` and ``python -m stormwatch_listener``."""
    from stormwatch_shared.service import configure_logging
    from stormwatch_shared.settings import load_settings

    configure_logging("listener")
    app = build_app(load_settings(ListenerSettings), load_settings(KafkaSettings))
    asyncio.run(app.run())
