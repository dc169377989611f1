"""The listener as an operator runs it: ``stormwatch run listener`` with a live source (RSS
from a local feed server), publishing to the real broker and stopping cleanly on SIGTERM."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from stormwatch_listener.state import StateStore
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import MENTIONS_RAW

from tests.support.kafka_local import read_all
from tests.support.processes import Service, wait_for

pytestmark = [pytest.mark.sources, pytest.mark.kafka]

_WHEN = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
FEED = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Lokalnachrichten</title>
<item><title>Klinikum Nordstadt: neue Station</title><link>https://n.example/1</link>
<pubDate>{_WHEN}</pubDate></item>
<item><title>Stadtfest am Sonntag</title><link>https://n.example/2</link></item>
</channel></rss>""".encode()


class _Feed(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.headers.get("If-None-Match") == '"1"':
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", '"1"')
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def feed_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    server.shutdown()
    server.server_close()


def test_live_rss_listener_process(
    kafka_settings: KafkaSettings, feed_url: str, tmp_path: Path
) -> None:
    watch = tmp_path / "watch.yaml"
    watch.write_text(
        "organisation:\n  id: hospital\n  name: Klinikum Nordstadt\n"
        "ambassadors:\n  - id: paula\n    handles: {x: [pflege_paula]}\n",
        encoding="utf-8",
    )
    state = tmp_path / "state.sqlite"
    env = {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "LISTENER_SOURCE": "rss",
        "LISTENER_WATCHLIST": str(watch),
        "LISTENER_RSS_FEEDS": feed_url,
        "LISTENER_STATE_PATH": str(state),
        "LISTENER_METRICS_PORT": "0",
    }
    topic = kafka_settings.topic(MENTIONS_RAW)
    listener = Service("listener", env, tmp_path)
    try:
        wait_for(
            lambda: len(read_all(kafka_settings.bootstrap_servers, topic, 1.0)) >= 2,
            60,
            "the feed's entries in Kafka",
        )
    finally:
        code = listener.stop()
    log = listener.log()
    assert code in (0, -15), log
    assert "Traceback" not in log, log
    assert "paula" in log and "no consent" in log  # left out, and said so
    records = [orjson.loads(v) for _, v in read_all(kafka_settings.bootstrap_servers, topic)]
    assert len(records) == 2  # the feed is the hospital's: both entries concern it
    assert {r["target_id"] for r in records} == {"hospital"}
    assert {r["mention"]["source"] for r in records} == {"rss"}
    assert "1" in (StateStore(state).load_cursor("rss") or "")
