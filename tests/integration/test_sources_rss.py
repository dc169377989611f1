"""RSS/Atom connector against a local HTTP server that honours ETag/Last-Modified."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from stormwatch_listener.domain.matching import WatchMatcher
from stormwatch_listener.domain.normalize import rss_id
from stormwatch_listener.domain.watchlist import (
    feeds,
    follow_accounts,
    monitored,
    parse_watch_list,
    to_targets,
)
from stormwatch_listener.sources.rss import RssConnector
from stormwatch_listener.sources.runner import SourceRunner
from stormwatch_listener.state import StateStore
from stormwatch_shared.settings import KafkaSettings
from test_sources_helpers import RECENT, Collector, FakeSleep, KafkaPublisher, LocalServer

pytestmark = pytest.mark.sources

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


def rss(items: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link>"
        f"<pubDate>{format_datetime(RECENT, usegmt=True)}</pubDate>"
        f"<description>{t}</description></item>"
        for t, link in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>News: Klinikum Nordstadt</title><link>https://news.example</link>"
        f"{body}</channel></rss>"
    ).encode()


class FakeFeed:
    def __init__(self) -> None:
        self.version = 1
        self.bodies: dict[int, bytes] = {}
        self.errors: list[tuple[int, dict[str, str]]] = []
        self.requests: list[dict[str, str]] = []
        app = web.Application()
        app.router.add_get("/rss/search", self.feed)
        self.server = LocalServer(app)

    async def feed(self, request: web.Request) -> web.Response:
        self.requests.append(
            {
                k: v
                for k, v in request.headers.items()
                if k in ("If-None-Match", "If-Modified-Since", "User-Agent")
            }
        )
        if self.errors:
            status, headers = self.errors.pop(0)
            return web.Response(status=status, headers=headers, text="busy")
        etag = f'"v{self.version}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=self.bodies[self.version],
            content_type="application/rss+xml",
            headers={"ETag": etag, "Last-Modified": "Wed, 11 Mar 2026 10:00:00 GMT"},
        )


def make(
    fake: FakeFeed, tmp: Path, sink: Any, *, sleep: Any, poll_sleep: Any
) -> tuple[SourceRunner, WatchMatcher, StateStore]:
    url = f"{fake.server.url}/rss/search?q=Klinikum"
    watch = parse_watch_list(
        {"organisation": {"id": "hospital", "name": "Klinikum Nordstadt", "feeds": [url]}}
    )
    entries, _ = monitored(watch, NOW.date())
    connector = RssConnector(
        feeds=feeds(entries), interval_s=600, sleep=poll_sleep, clock=lambda: NOW
    )
    matcher = WatchMatcher(to_targets(entries), follow_accounts(entries))
    store = StateStore(tmp / "state.sqlite")
    runner = SourceRunner(
        connector,
        matcher,
        store,
        dead_letters=sink,
        sleep=sleep,
        clock=lambda: NOW,
        cursor_every_s=0,
    )
    return runner, matcher, store


def test_conditional_get_polite_interval_and_only_new_entries_through_kafka(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    fake = FakeFeed()
    first = [
        ("Neuer Chefarzt", "https://news.example/a?utm_source=rss"),
        ("Klinikum Nordstadt baut aus", "https://news.example/b"),
    ]
    fake.bodies = {
        1: rss(first),
        2: rss([*first, ("Streik angekündigt", "https://NEWS.example/c/#top")]),
    }
    pub = KafkaPublisher(kafka_settings)
    polls = FakeSleep()

    def on_poll(_: float) -> None:
        if len(polls.delays) == 2:
            fake.version = 2  # the feed changes after the second (unchanged) poll

    polls.on_sleep = on_poll

    async def main() -> None:
        async with fake.server:
            runner, matcher, store = make(
                fake, tmp_path, pub.dead_letter, sleep=FakeSleep(), poll_sleep=polls
            )
            await pub.run(runner, matcher, lambda: "v2" in (store.load_cursor("rss") or ""))

    asyncio.run(main())
    ids = [r["mention"]["id"] for r in pub.records()]
    assert sorted(ids) == sorted(
        rss_id(u)
        for u in ("https://news.example/a", "https://news.example/b", "https://news.example/c")
    )
    assert len(ids) == 3  # the unchanged entries of v2 were not published again
    assert fake.requests[0].get("If-None-Match") is None
    assert fake.requests[1]["If-None-Match"] == '"v1"'
    assert fake.requests[1]["If-Modified-Since"] == "Wed, 11 Mar 2026 10:00:00 GMT"
    assert "stormwatch" in fake.requests[0]["User-Agent"]
    assert polls.delays[:2] == [600, 600]


def test_429_retry_after_and_5xx_backoff_and_unparsable_feed_dead_lettered(
    tmp_path: Path,
) -> None:
    fake = FakeFeed()
    fake.bodies = {
        1: b"<html><body>Consent wall</body></html>",
        2: rss([("Klinikum Nordstadt", "https://news.example/x")]),
    }
    fake.errors = [(429, {"Retry-After": "120"}), (500, {}), (429, {})]
    sink = Collector()
    sleep = FakeSleep()
    polls = FakeSleep()

    def on_poll(_: float) -> None:
        fake.version = 2

    polls.on_sleep = on_poll

    async def main() -> None:
        async with fake.server:
            runner, _, _ = make(fake, tmp_path, sink.dead_letter, sleep=sleep, poll_sleep=polls)
            await sink.run(runner, lambda: len(sink.mentions) == 1)

    asyncio.run(main())
    # 429 asks for 120 s (more than the 60 s start): honoured; 500: 5 s; 429 again: 120 s.
    assert sleep.delays == [120.0, 5.0, 120.0]
    assert len(sink.dead) == 1 and "Consent wall" in sink.dead[0].payload
    assert sink.mentions[0].author.handle == "News: Klinikum Nordstadt"
