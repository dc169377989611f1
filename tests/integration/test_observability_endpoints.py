"""The per-service HTTP endpoints over real sockets: what Prometheus and an orchestrator see."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest
from stormwatch_shared import metrics
from stormwatch_shared.observability import (
    HealthServer,
    MetricsSettings,
    Observability,
    metrics_settings,
)

pytestmark = pytest.mark.prometheus


async def request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def get(path: str, *extra: str, method: str = "GET") -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: x", *extra, "", ""]).encode()


def test_endpoints_answer_as_documented() -> None:
    flags = {"model": False}

    async def slow() -> bool:
        await asyncio.sleep(5)
        return True

    def broken() -> bool:
        raise RuntimeError("broker gone")

    async def scenario() -> None:
        metrics.record_dead_letter("endpoint-test", "t.mentions.raw.v1")
        server = HealthServer("unit", port=0, check_timeout_s=0.2)
        server.add_check("model", lambda: flags["model"])
        await server.start()
        port = server.port
        try:
            status, headers, body = await request(port, get("/metrics"))
            assert status == 200 and headers["content-type"].startswith("text/plain")
            assert (
                b'stormwatch_dead_letters_total{service="endpoint-test",topic="mentions.raw.v1"}'
                in body
            )
            status, headers, body = await request(
                port, get("/metrics", "Accept: application/openmetrics-text; version=1.0.0")
            )
            assert headers["content-type"].startswith("application/openmetrics-text")
            assert body.rstrip().endswith(b"# EOF")

            assert (await request(port, get("/healthz")))[::2] == (200, b"ok\n")

            status, _, body = await request(port, get("/readyz"))
            assert status == 503 and json.loads(body)["checks"] == {"model": False}
            flags["model"] = True
            status, _, body = await request(port, get("/readyz?verbose=1"))
            assert status == 200 and json.loads(body) == {
                "service": "unit",
                "ready": True,
                "checks": {"model": True},
            }
            server.add_check("broker", broken)
            server.add_check("slow", slow)
            status, _, body = await request(port, get("/readyz"))
            assert status == 503
            assert json.loads(body)["checks"] == {"model": True, "broker": False, "slow": False}

            status, _, body = await request(port, get("/healthz", method="HEAD"))
            assert (status, body) == (200, b"")
            assert (await request(port, get("/nope")))[0] == 404
            assert (await request(port, get("/metrics", method="POST")))[0] == 405
            assert (await request(port, b"GARBAGE\r\n\r\n"))[0] == 400
            huge = get("/metrics", *(f"X-Pad-{i}: {'a' * 100}" for i in range(100)))
            assert (await request(port, huge))[0] == 400
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_a_busy_port_is_logged_and_the_service_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        obs = Observability("unit", MetricsSettings(port=busy))

        async def scenario() -> None:
            await obs.start()
            await obs.stop()

        with caplog.at_level(logging.ERROR, logger="stormwatch.observability"):
            asyncio.run(scenario())
    assert any("metrics endpoint not started" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("service", "env", "port", "host"),
    [
        ("listener", {}, 9101, "127.0.0.1"),
        ("sentiment", {}, 9102, "127.0.0.1"),
        ("alerting", {}, 9103, "127.0.0.1"),
        ("sentiment", {"SENTIMENT_METRICS_PORT": "19999"}, 19999, "127.0.0.1"),
        ("alerting", {"ALERTING_METRICS_HOST": "0.0.0.0"}, 9103, "0.0.0.0"),
    ],
)
def test_ports_and_bind_address_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, service: str, env: dict[str, str], port: int, host: str
) -> None:
    for name in ("LISTENER", "SENTIMENT", "ALERTING"):
        monkeypatch.delenv(f"{name}_METRICS_PORT", raising=False)
        monkeypatch.delenv(f"{name}_METRICS_HOST", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = metrics_settings(service)
    assert (settings.port, settings.host) == (port, host)


def test_a_bad_port_stops_the_service_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTING_METRICS_PORT", "70000")
    with pytest.raises(SystemExit, match="ALERTING_METRICS_PORT"):
        metrics_settings("alerting")
