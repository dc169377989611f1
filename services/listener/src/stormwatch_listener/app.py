"""Builds the listener's FastStream app: a source loop publishing ``MentionReceived``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from stormwatch_shared.codec import encode
from stormwatch_shared.events import DeadLettered
from stormwatch_shared.observability import instrument
from stormwatch_shared.scenario import ReadProblems
from stormwatch_shared.service import make_broker
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.targets import TargetMatcher, load_targets
from stormwatch_shared.topics import MENTIONS_RAW, dlq

from stormwatch_listener.domain.matching import WatchMatcher, received_events
from stormwatch_listener.domain.threads import ThreadTargets
from stormwatch_listener.domain.watchlist import feeds, follow_accounts, hashtags, x_rules
from stormwatch_listener.settings import ListenerSettings
from stormwatch_listener.sources.base import CheckpointedSource, Connector, MentionSource
from stormwatch_listener.sources.bluesky import BlueskyConnector
from stormwatch_listener.sources.budget import BudgetMeter
from stormwatch_listener.sources.mastodon import MastodonConnector
from stormwatch_listener.sources.replay import ReplaySource
from stormwatch_listener.sources.rss import RssConnector
from stormwatch_listener.sources.runner import SourceRunner
from stormwatch_listener.sources.x import XConnector
from stormwatch_listener.state import StateStore
from stormwatch_listener.watchlist import Loaded
from stormwatch_listener.watchlist import load as load_watch_list

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
    threads: ThreadTargets | None = None,
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
    threads = threads if threads is not None else ThreadTargets()
    async for mention in source.mentions():
        counts["mentions"] += 1
        events = received_events(mention, matcher, drill=drill, threads=threads)
        if not events:
            counts["unmatched"] += 1
        for event in events:
            fut = await broker.publish(
                encode(event),
                topic,
                key=event.target_id.encode(),
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
    if settings.source != "replay":
        return build_live_app(settings, kafka)
    broker = make_broker(kafka, "stormwatch-listener")
    app = FastStream(broker, logger=log)
    instrument(app, broker, "listener", kafka=kafka)
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


def build_connector(settings: ListenerSettings, loaded: Loaded, store: StateStore) -> Connector:
    """The connector for ``LISTENER_SOURCE``, configured from settings and the watch list."""
    entries = loaded.entries
    if settings.source == "x":
        return XConnector(
            bearer_token=settings.x_bearer_token.get_secret_value(),
            rules=x_rules(entries),
            budget=BudgetMeter(
                store, "x", settings.x_monthly_read_budget, lambda: datetime.now(UTC)
            ),
            base_url=settings.x_base_url,
            no_data_timeout_s=settings.x_no_data_timeout_s,
        )
    if settings.source == "mastodon":
        return MastodonConnector(
            api_base_url=settings.mastodon_base_url,
            access_token=settings.mastodon_access_token.get_secret_value(),
            hashtags=hashtags(entries),
            public=settings.mastodon_public,
        )
    if settings.source == "bluesky":
        return BlueskyConnector(
            jetstream_url=settings.bluesky_jetstream_url,
            appview_url=settings.bluesky_appview_url,
        )
    extra = [f.strip() for f in settings.rss_feeds.split(",") if f.strip()]
    return RssConnector(feeds=[*feeds(entries), *extra], interval_s=settings.rss_interval_s)


def build_live_app(settings: ListenerSettings, kafka: KafkaSettings) -> FastStream:
    """A live source: runs until stopped; the cursor moves only after Kafka's ack."""
    broker = make_broker(kafka, "stormwatch-listener")
    app = FastStream(broker, logger=log)
    instrument(app, broker, "listener", kafka=kafka)
    assert settings.watchlist is not None
    loaded = load_watch_list(settings.watchlist, datetime.now(UTC).date())
    matcher = WatchMatcher(loaded.targets, follow_accounts(loaded.entries))
    extra = [f.strip() for f in settings.rss_feeds.split(",") if f.strip()]
    if extra and loaded.watch.organisations:
        for url in extra:
            matcher.add_account(f"rss:{url[:200]}", [loaded.watch.organisations[0].id])
    store = StateStore(settings.state_path)
    connector = build_connector(settings, loaded, store)
    dlq_topic = kafka.topic(dlq(MENTIONS_RAW))

    async def to_dlq(item: DeadLettered) -> None:
        await broker.publish(encode(item), dlq_topic)

    runner = SourceRunner(
        connector, matcher, store, dead_letters=to_dlq, dlq_source_topic=kafka.topic(MENTIONS_RAW)
    )
    tasks: list[asyncio.Task[None]] = []

    async def run_source() -> None:
        if isinstance(connector, BlueskyConnector):
            handles = [h for e in loaded.entries for h in e.handles.bluesky]
            for handle, did in (await connector.resolve(handles)).items():
                matcher.add_account(
                    f"bluesky:{did}", matcher.accounts.get(f"bluesky:{handle.casefold()}", [])
                )
        try:
            await publish_source(
                broker, runner, matcher, kafka.topic(MENTIONS_RAW), drill=settings.drill
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Quelle %s abgebrochen / source failed", settings.source)
            app.exit()
            raise

    @app.after_startup
    async def _start() -> None:
        log.info("Quelle / source: %s, %d Ziele / targets", settings.source, len(loaded.targets))
        tasks.append(asyncio.create_task(run_source()))

    @app.on_shutdown
    async def _stop() -> None:
        runner.stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        store.close()

    return app


def run_service() -> None:
    """Entry point for ``stormwatch run listener`` and ``python -m stormwatch_listener``."""
    from stormwatch_shared.service import configure_logging, serve
    from stormwatch_shared.settings import load_settings

    configure_logging("listener")
    kafka = load_settings(KafkaSettings)
    serve(build_app(load_settings(ListenerSettings), kafka), kafka, "listener")
