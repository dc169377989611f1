"""Helpers for the source tests (no tests here): a local HTTP server on a free port, the
publish loop through the real broker, a fake sleep that records instead of waiting, and
metric deltas. Kept beside the tests because only they use it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import REGISTRY
from stormwatch_listener.app import publish_source
from stormwatch_listener.sources.runner import SourceRunner
from stormwatch_shared.codec import encode
from stormwatch_shared.events import DeadLettered, Mention
from stormwatch_shared.service import make_broker
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.targets import TargetMatcher
from stormwatch_shared.topics import MENTIONS_RAW, dlq

from tests.support.kafka_local import read_all

RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
"""Post times for records that go through Kafka: the topics keep 30 days by record time, so
a fixed date would be deleted by the broker's retention check once the calendar passes it."""


def recent_iso(seconds: int = 0) -> str:
    return (RECENT + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class LocalServer:
    """An aiohttp app on 127.0.0.1 and a free port, in the test's event loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        self.port = 0

    async def __aenter__(self) -> LocalServer:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class FakeSleep:
    """Records the delays the runner decides on; ``on_sleep`` may stop the runner."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.delays: list[float] = []
        self.on_sleep = on_sleep

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.on_sleep is not None:
            self.on_sleep(delay)
        await asyncio.sleep(0)


class Collector:
    """An in-memory publisher: acknowledges each mention at once, like a healthy broker."""

    def __init__(self) -> None:
        self.mentions: list[Mention] = []
        self.dead: list[DeadLettered] = []

    async def dead_letter(self, item: DeadLettered) -> None:
        self.dead.append(item)

    async def run(
        self, runner: SourceRunner, until: Callable[[], bool], limit_s: float = 10.0
    ) -> None:
        async def consume() -> None:
            async for m in runner.mentions():
                self.mentions.append(m)
                await runner.checkpoint()

        await run_until(runner, consume(), until, limit_s)


async def run_until(
    runner: SourceRunner, work: Awaitable[Any], until: Callable[[], bool], limit_s: float
) -> None:
    task = asyncio.ensure_future(work)
    deadline = time.monotonic() + limit_s
    try:
        while not until():
            if task.done():
                task.result()
                break
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the source")
            await asyncio.sleep(0.02)
    finally:
        runner.stop()
        try:
            await asyncio.wait_for(task, 5)
        except TimeoutError:
            task.cancel()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


class KafkaPublisher:
    """The listener's real publish path (``publish_source``) against the test broker."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.broker = make_broker(kafka, "stormwatch-listener-test")
        self.topic = kafka.topic(MENTIONS_RAW)
        self.dlq_topic = kafka.topic(dlq(MENTIONS_RAW))

    async def dead_letter(self, item: DeadLettered) -> None:
        await self.broker.publish(encode(item), self.dlq_topic)

    async def run(
        self,
        runner: SourceRunner,
        matcher: TargetMatcher,
        until: Callable[[], bool],
        limit_s: float = 15.0,
    ) -> None:
        await self.broker.connect()
        try:
            await run_until(
                runner, publish_source(self.broker, runner, matcher, self.topic), until, limit_s
            )
        finally:
            await self.broker.stop()

    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in read_all(self.kafka.bootstrap_servers, self.topic)]

    def keys(self) -> list[bytes | None]:
        return [k for k, _ in read_all(self.kafka.bootstrap_servers, self.topic)]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in read_all(self.kafka.bootstrap_servers, self.dlq_topic)]


def metric(name: str, source: str) -> float:
    return REGISTRY.get_sample_value(name, {"source": source}) or 0.0


class MetricDelta:
    def __init__(self, source: str, *names: str) -> None:
        self.source = source
        self.before = {n: metric(n, source) for n in names}

    def __getitem__(self, name: str) -> float:
        return metric(name, self.source) - self.before[name]
