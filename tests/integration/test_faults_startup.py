"""A service started while the broker is not up yet: it waits, says so, and gives up clearly.

Compose starts containers in parallel and a restarted node boots slower than our services;
exiting on the first refused connection would put them in a restart loop with a traceback.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
from stormwatch_shared.service import KafkaUnreachableError, wait_for_kafka
from stormwatch_shared.settings import KafkaSettings

from tests.support.kafka_local import free_port

pytestmark = [pytest.mark.faults, pytest.mark.kafka]


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextmanager
def forwarder(port: int, target: str, open_after_s: float) -> Iterator[None]:
    """A TCP port that refuses connections for ``open_after_s``, then forwards to ``target``."""
    host, _, tport = target.rpartition(":")
    stop = threading.Event()

    def serve() -> None:
        if stop.wait(open_after_s):
            return
        with socket.create_server(("127.0.0.1", port)) as server:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection((host, int(tport)))
                for a, b in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def test_waits_for_a_broker_that_comes_up_late(kafka_bootstrap: str) -> None:
    port = free_port()
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", connect_timeout_s=60)
    with forwarder(port, kafka_bootstrap, open_after_s=2.0):
        started = time.monotonic()
        attempts = asyncio.run(wait_for_kafka(settings, "sentiment"))
        waited = time.monotonic() - started
    assert attempts >= 2, "the broker was closed for 2 s, so the first attempt must fail"
    assert 1.5 <= waited < 30


def test_gives_up_after_the_timeout_with_a_message_naming_what_to_check() -> None:
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(KafkaUnreachableError) as err:
        asyncio.run(wait_for_kafka(settings, "alerting"))
    assert time.monotonic() - started < 10
    text = str(err.value.code)
    assert "nicht erreichbar" in text and "unreachable" in text
    assert "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS" in text
    assert "STORMWATCH_KAFKA_CONNECT_TIMEOUT_S" in text


def test_a_service_process_without_a_broker_exits_with_that_message_not_a_traceback() -> None:
    env = {
        **os.environ,
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "STORMWATCH_KAFKA_CONNECT_TIMEOUT_S": "2",
        "SENTIMENT_METRICS_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "stormwatch_sentiment"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "Kafka unter" in done.stderr and "STORMWATCH_KAFKA_CONNECT_TIMEOUT_S" in done.stderr
    assert "neuer Versuch" in done.stderr, "each failed attempt is logged"
    assert "Traceback" not in done.stderr
