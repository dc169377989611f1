"""One small HTTP server per service: ``/metrics``, ``/healthz`` and ``/readyz``.

Why an asyncio server in the service's own event loop rather than prometheus_client's
threaded one: liveness then means "the loop that consumes Kafka still answers", which is
what an orchestrator should restart on; a thread would keep answering while the loop hangs.
Readiness is separate ("broker connected, model loaded") so a service that is still loading
its model is not killed, only kept out of rotation.

A busy metrics port must not stop the pipeline: the service logs the problem and goes on
without the endpoint, and Prometheus' ``up == 0`` (rule ``StormwatchServiceDown``) pages the
on-call team. Consumer lag is read from the broker by a background task (committed offsets
against end offsets), so a consumer that is stuck still shows a growing lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stormwatch_shared import metrics
from stormwatch_shared.settings import KafkaSettings, load_settings

if TYPE_CHECKING:
    from faststream import FastStream
    from faststream.kafka import KafkaBroker

log = logging.getLogger("stormwatch.observability")

Check = Callable[[], Awaitable[bool] | bool]
"""A readiness check: returns (or resolves to) True when its part is ready."""

MAX_REQUEST_BYTES = 8192
"""Requests are a line and a few headers; anything larger is refused, not buffered."""


class MetricsSettings(BaseSettings):
    """Where a service serves its endpoints; one subclass (env prefix) per service."""

    model_config = SettingsConfigDict(extra="ignore")

    enabled: bool = Field(default=True, description="Serve /metrics, /healthz and /readyz.")
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Bind address; 0.0.0.0 in containers so Prometheus can reach it.",
    )
    port: int = Field(default=0, ge=0, le=65535, description="TCP port (0 = any free port).")
    lag_interval_s: float = Field(
        default=15.0, gt=0, le=3600, description="How often consumer lag is read from Kafka."
    )


class ListenerMetricsSettings(MetricsSettings):
    model_config = SettingsConfigDict(env_prefix="LISTENER_METRICS_", extra="ignore")
    port: int = Field(default=9101, ge=0, le=65535)


class SentimentMetricsSettings(MetricsSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMENT_METRICS_", extra="ignore")
    port: int = Field(default=9102, ge=0, le=65535)


class AlertingMetricsSettings(MetricsSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTING_METRICS_", extra="ignore")
    port: int = Field(default=9103, ge=0, le=65535)


SETTINGS_BY_SERVICE: dict[str, type[MetricsSettings]] = {
    "listener": ListenerMetricsSettings,
    "sentiment": SentimentMetricsSettings,
    "alerting": AlertingMetricsSettings,
}


def metrics_settings(service: str) -> MetricsSettings:
    """The endpoint settings of ``service`` from the environment (exits naming a bad variable)."""
    return load_settings(SETTINGS_BY_SERVICE[service])


async def _run_check(check: Check, timeout_s: float) -> bool:
    try:
        result = check()
        if isinstance(result, Awaitable):
            result = await asyncio.wait_for(result, timeout_s)
        return bool(result)
    except Exception as exc:  # a failing check means "not ready", never a crashed endpoint
        log.debug("readiness check failed: %s", exc)
        return False


class HealthServer:
    """A minimal HTTP/1.1 server for the three operational endpoints (GET/HEAD only)."""

    def __init__(
        self,
        service: str,
        host: str = "127.0.0.1",
        port: int = 0,
        registry: CollectorRegistry = REGISTRY,
        check_timeout_s: float = 2.0,
    ) -> None:
        self.service = service
        self.host = host
        self.requested_port = port
        self.registry = registry
        self.check_timeout_s = check_timeout_s
        self.checks: dict[str, Check] = {}
        self._server: asyncio.Server | None = None

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def readiness(self) -> dict[str, bool]:
        names = list(self.checks)
        results = await asyncio.gather(
            *(_run_check(self.checks[n], self.check_timeout_s) for n in names)
        )
        return dict(zip(names, results, strict=True))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        try:
            status, ctype, body, method = await self._respond(head)
        except Exception:
            log.exception("metrics endpoint failed")
            status, ctype, body, method = 500, "text/plain; charset=utf-8", b"error\n", "GET"
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
        reason |= {500: "Internal Server Error", 503: "Service Unavailable"}
        header = (
            f"HTTP/1.1 {status} {reason.get(status, '')}\r\n"
            f"Content-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            writer.write(header.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _respond(self, head: bytes) -> tuple[int, str, bytes, str]:
        text = "text/plain; charset=utf-8"
        if len(head) > MAX_REQUEST_BYTES:
            return 400, text, b"request too large\n", "GET"
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return 400, text, b"bad request\n", "GET"
        method, target, _ = parts
        if method not in ("GET", "HEAD"):
            return 405, text, b"only GET\n", "GET"
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        path = target.split("?", 1)[0]
        if path == "/metrics":
            encoder, ctype = choose_encoder(headers.get("accept", ""))
            return 200, ctype, encoder(self.registry), method
        if path == "/healthz":
            return 200, text, b"ok\n", method
        if path == "/readyz":
            results = await self.readiness()
            ready = all(results.values())
            body = json.dumps({"service": self.service, "ready": ready, "checks": results})
            return (200 if ready else 503), "application/json", body.encode() + b"\n", method
        return 404, text, b"not found: try /metrics, /healthz, /readyz\n", method


@dataclass(frozen=True)
class LagSource:
    """A consumer group and the topic it reads; ``label`` is the topic without test prefix."""

    group: str
    topic: str
    label: str


class ConsumerLagMonitor:
    """Reads committed offsets and end offsets from the broker and sets the lag gauge."""

    def __init__(self, bootstrap_servers: str, sources: Sequence[LagSource]) -> None:
        self.bootstrap_servers = bootstrap_servers.split(",")
        self.sources = list(sources)
        self._admin: Any = None
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id="stormwatch-lag"
        )
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, group_id=None
        )
        await self._consumer.start()

    async def stop(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close() if client is self._admin else await client.stop()
        self._admin = self._consumer = None

    async def measure(self) -> dict[tuple[str, str], int]:
        from aiokafka import TopicPartition

        out: dict[tuple[str, str], int] = {}
        # Asked every time, so partitions added while the service runs are counted too.
        described = await self._admin.describe_topics(sorted({s.topic for s in self.sources}))
        partitions = {
            d["topic"]: sorted(p["partition"] for p in d["partitions"])
            for d in described
            if d.get("error_code", 0) == 0
        }
        for src in self.sources:
            tps = [TopicPartition(src.topic, p) for p in partitions.get(src.topic, ())]
            if not tps:
                continue
            end = await self._consumer.end_offsets(tps)
            begin = await self._consumer.beginning_offsets(tps)
            committed = await self._admin.list_consumer_group_offsets(src.group, partitions=tps)
            lag = 0
            for tp in tps:
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else 0
                lag += max(0, end[tp] - max(done, begin[tp]))
            out[(src.group, src.label)] = lag
            metrics.CONSUMER_LAG.labels(group=src.group, topic=src.label).set(lag)
        return out

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                if self._admin is None:
                    await self.start()
                await self.measure()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Consumer-Lag nicht lesbar / consumer lag unreadable: %s", exc)
                await self.stop()
            await asyncio.sleep(interval_s)


class Observability:
    """What one service process exposes; created by :func:`instrument`."""

    def __init__(
        self,
        service: str,
        settings: MetricsSettings,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.service = service
        self.settings = settings
        self.server = HealthServer(service, settings.host, settings.port, registry)
        self.lag: ConsumerLagMonitor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._flags: dict[str, bool] = {}

    def add_check(self, name: str, check: Check) -> None:
        self.server.add_check(name, check)

    def require(self, name: str) -> None:
        """Readiness waits for ``name`` until :meth:`mark_ready` is called (e.g. the model)."""
        self._flags[name] = False
        self.server.add_check(name, lambda: self._flags[name])

    def mark_ready(self, name: str, ready: bool = True) -> None:
        self._flags[name] = ready

    async def start(self) -> None:
        if not self.settings.enabled:
            return
        try:
            await self.server.start()
        except OSError as exc:
            log.error(
                "Metrik-Endpunkt nicht gestartet / metrics endpoint not started on %s:%s: %s",
                self.settings.host,
                self.settings.port,
                exc,
            )
            return
        log.info(
            "Metriken / metrics: http://%s:%d/metrics (/healthz, /readyz)",
            self.settings.host,
            self.server.port,
        )

    def start_lag_monitor(self) -> None:
        if self.lag is not None and self.settings.enabled:
            self._tasks.append(asyncio.create_task(self.lag.run(self.settings.lag_interval_s)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.lag is not None:
            await self.lag.stop()
        await self.server.stop()


def service_version() -> str:
    try:
        return metadata.version("stormwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def instrument(
    app: FastStream,
    broker: KafkaBroker,
    service: str,
    *,
    kafka: KafkaSettings | None = None,
    lag: Iterable[tuple[str, str]] = (),
    settings: MetricsSettings | None = None,
) -> Observability:
    """Wire metrics, health and readiness into a FastStream app (call before ``app.run``).

    ``lag`` names (consumer group, base topic) pairs whose lag this process reports; the
    topic prefix of ``kafka`` is applied for reading and left out of the label.
    """
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware

    obs = Observability(service, settings or metrics_settings(service))
    broker.add_middleware(
        KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"stormwatch-{service}")
    )
    metrics.BUILD_INFO.labels(service=service).info(
        {"version": service_version(), "python": platform.python_version()}
    )

    async def broker_connected() -> bool:
        return await broker.ping(timeout=1.0)

    obs.add_check("broker", broker_connected)
    pairs = list(lag)
    if pairs and kafka is not None:
        obs.lag = ConsumerLagMonitor(
            kafka.bootstrap_servers,
            [LagSource(group, kafka.topic(topic), topic) for group, topic in pairs],
        )

    @app.on_startup
    async def _start_observability() -> None:
        await obs.start()

    @app.after_startup
    async def _start_lag() -> None:
        obs.start_lag_monitor()

    @app.on_shutdown
    async def _stop_observability() -> None:
        await obs.stop()

    return obs
