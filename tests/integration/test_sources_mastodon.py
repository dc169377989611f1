"""Mastodon connector: the real Mastodon.py client (api_base_url=http://127.0.0.1:port)
against a local server speaking the streaming API as server-sent events, plus the REST
timelines it backfills from."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from stormwatch_listener.domain.matching import WatchMatcher
from stormwatch_listener.domain.watchlist import (
    follow_accounts,
    hashtags,
    monitored,
    parse_watch_list,
    to_targets,
)
from stormwatch_listener.sources.base import FatalSourceError
from stormwatch_listener.sources.mastodon import MastodonConnector
from stormwatch_listener.sources.runner import SourceRunner
from stormwatch_listener.state import StateStore
from stormwatch_shared.settings import KafkaSettings
from test_sources_helpers import Collector, FakeSleep, KafkaPublisher, LocalServer, recent_iso

pytestmark = pytest.mark.sources

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
WATCH = parse_watch_list(
    {
        "organisation": {
            "id": "hospital",
            "name": "Klinikum Nordstadt",
            "hashtags": ["KlinikumNordstadt"],
        },
        "ambassadors": [
            {
                "id": "paula",
                "name": "Paula Brandt",
                "handles": {"mastodon": ["paula@pflege.social"]},
                "consent": {"recorded": "2026-02-01"},
            }
        ],
    }
)
ENTRIES, _ = monitored(WATCH, NOW.date())


def status(
    n: int,
    text: str,
    *,
    user: str = "anna",
    reply_to: int | None = None,
    reblog: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": str(n),
        "uri": f"https://other.example/users/{user}/statuses/9{n}",
        "url": f"https://other.example/@{user}/9{n}",
        "created_at": recent_iso(n),
        "content": f"<p>{text}</p>",
        "language": "de",
        "spoiler_text": "",
        "visibility": "public",
        "in_reply_to_id": str(reply_to) if reply_to else None,
        "in_reply_to_account_id": None,
        "reblog": reblog,
        "favourites_count": 2,
        "reblogs_count": 0,
        "replies_count": 1,
        "mentions": [],
        "tags": [],
        "emojis": [],
        "media_attachments": [],
        "account": {
            "id": f"a{user}",
            "username": user,
            "acct": f"{user}@other.example",
            "url": f"https://other.example/@{user}",
            "followers_count": 42,
            "display_name": user,
        },
    }


class FakeMastodon:
    """Each hashtag stream connection plays the next script (an HTTP status, or steps: a
    status id, raw SSE bytes, "heartbeat", "hold"); the tag timeline pages by min_id."""

    def __init__(self) -> None:
        self.statuses: dict[int, dict[str, Any]] = {}
        self.timeline: set[int] = set()
        self.scripts: list[Any] = []
        self.min_ids: list[str] = []
        self.auth: list[str] = []
        self.tags: list[str] = []
        app = web.Application()
        app.router.add_get("/api/v1/instance", self.instance)
        app.router.add_get("/api/v1/streaming/hashtag", self.stream)
        app.router.add_get("/api/v1/timelines/tag/{tag}", self.tag_timeline)
        app.router.add_get("/api/v1/statuses/{id}", self.one)
        self.server = LocalServer(app)

    def add(self, *items: dict[str, Any], timeline: bool = False) -> None:
        for s in items:
            self.statuses[int(s["id"])] = s
            if timeline:
                self.timeline.add(int(s["id"]))

    async def instance(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "uri": "127.0.0.1",
                "title": "local",
                "version": "4.3.0",
                "urls": {"streaming_api": f"ws://127.0.0.1:{self.server.port}"},
            }
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.auth.append(request.headers.get("Authorization", ""))
        self.tags.append(request.query.get("tag", ""))
        script = self.scripts.pop(0) if self.scripts else ["hold"]
        if isinstance(script, int):
            return web.Response(status=script, text="no")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for step in script:
            if step == "heartbeat":
                await resp.write(b":thump\n")
            elif step == "hold":
                while True:
                    await resp.write(b":thump\n")
                    await asyncio.sleep(0.05)
            elif isinstance(step, bytes):
                await resp.write(step)
            else:
                data = orjson.dumps(self.statuses[step])
                await resp.write(b"event: update\ndata: " + data + b"\n\n")
            await asyncio.sleep(0.005)
        return resp

    async def tag_timeline(self, request: web.Request) -> web.Response:
        min_id = int(request.query.get("min_id", "0"))
        self.min_ids.append(request.query.get("min_id", ""))
        limit = int(request.query.get("limit", "20"))
        newer = sorted(i for i in self.timeline if i > min_id)[:limit]
        return web.json_response([self.statuses[i] for i in reversed(newer)])

    async def one(self, request: web.Request) -> web.Response:
        n = int(request.match_info["id"])
        if n not in self.statuses:
            return web.json_response({"error": "Record not found"}, status=404)
        return web.json_response(self.statuses[n])


def make(
    fake: FakeMastodon, tmp: Path, sink: Any, sleep: Any = None
) -> tuple[SourceRunner, WatchMatcher, StateStore]:
    connector = MastodonConnector(
        api_base_url=fake.server.url,
        access_token="user-token",
        hashtags=hashtags(ENTRIES),
        no_data_timeout_s=5,
    )
    matcher = WatchMatcher(to_targets(ENTRIES), follow_accounts(ENTRIES))
    store = StateStore(tmp / "state.sqlite")
    runner = SourceRunner(
        connector,
        matcher,
        store,
        dead_letters=sink,
        sleep=sleep or FakeSleep(),
        clock=lambda: NOW,
        cursor_every_s=0,
    )
    return runner, matcher, store


def test_stream_backfill_with_min_id_and_dedup_on_uri_through_kafka(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    fake = FakeMastodon()
    s1 = status(1, "#KlinikumNordstadt Wartezeit in der Notaufnahme")
    boost = status(2, "", user="bob", reblog=s1)  # another id, same status URI
    fake.add(s1, boost, timeline=False)
    fake.add(
        status(3, "Klinikum Nordstadt drei", user="carl"),
        status(4, "Klinikum Nordstadt vier", user="dora"),
        timeline=True,
    )
    fake.add(
        status(5, "Stimmt, furchtbar", user="eve", reply_to=7),
        status(6, "Off topic", user="fred"),
        timeline=True,
    )
    # Posts by Paula herself are followed even without a keyword, and so are the replies to
    # them (eve's reply names nobody; the parent's URI says whose post it answers).
    fake.add(
        status(7, "Mein Dienst heute", user="paula")
        | {
            "uri": "https://pflege.social/users/paula/statuses/97",
            "account": {
                "id": "ap",
                "username": "paula",
                "acct": "paula",
                "url": "https://pflege.social/@paula",
                "followers_count": 900,
            },
        },
        timeline=True,
    )
    fake.scripts = [[1, "heartbeat", 2], [4, 5, 6, 7, "hold"]]
    pub = KafkaPublisher(kafka_settings)
    sleep = FakeSleep()

    async def main() -> None:
        async with fake.server:
            runner, matcher, store = make(fake, tmp_path, pub.dead_letter, sleep)
            await pub.run(
                runner,
                matcher,
                lambda: '"KlinikumNordstadt": 7' in (store.load_cursor("mastodon") or ""),
            )

    asyncio.run(main())
    records = pub.records()
    ids = sorted(r["mention"]["id"] for r in records)
    uri = "https://other.example/users/{}/statuses/9{}"
    paula = "masto:https://pflege.social/users/paula/statuses/97"
    assert ids == sorted(
        [
            "masto:" + uri.format(u, n)
            for u, n in [("anna", 1), ("carl", 3), ("dora", 4), ("eve", 5)]
        ]
        + [paula]
    )
    by_id = {r["mention"]["id"]: r for r in records}
    reply = by_id["masto:" + uri.format("eve", 5)]
    assert reply["mention"]["in_reply_to"] == paula
    assert reply["mention"]["text"] == "Stimmt, furchtbar"
    assert reply["target_id"] == "paula"
    assert by_id[paula]["target_id"] == "paula"
    assert by_id[paula]["mention"]["author"]["handle"] == "@paula@pflege.social"
    assert (
        by_id["masto:" + uri.format("anna", 1)]["mention"]["author"]["handle"]
        == "@anna@other.example"
    )
    assert fake.min_ids[0] == "2"  # backfill from the last per-server id seen
    assert fake.auth[0] == "Bearer user-token" and fake.tags[0] == "KlinikumNordstadt"
    assert sleep.delays == [0.25]


def test_malformed_event_dead_lettered_then_429_and_5xx_backed_off(tmp_path: Path) -> None:
    fake = FakeMastodon()
    fake.add(status(11, "Klinikum Nordstadt elf"), status(12, "Klinikum Nordstadt zwölf"))
    fake.add(status(13, "Klinikum Nordstadt dreizehn"), timeline=True)
    fake.scripts = [[11, b"event: update\ndata: {broken\n\n"], 429, 503, [12, "hold"]]
    sink = Collector()
    sleep = FakeSleep()

    async def main() -> None:
        async with fake.server:
            runner, _, _ = make(fake, tmp_path, sink.dead_letter, sleep)
            await sink.run(runner, lambda: len(sink.mentions) == 3)

    asyncio.run(main())
    assert sorted(m.id.rsplit("/", 1)[1] for m in sink.mentions) == ["911", "912", "913"]
    assert len(sink.dead) == 1 and "{broken" in sink.dead[0].payload
    assert "Bad JSON" in sink.dead[0].reason
    # The broken event drops the connection (network, 250 ms), then 429 (60 s), then 503.
    assert sleep.delays == [0.25, 60.0, 5.0]


def test_streams_need_a_user_token() -> None:
    with pytest.raises(FatalSourceError, match=r"4\.2"):
        MastodonConnector(
            api_base_url="http://127.0.0.1:9", access_token="", hashtags=["KlinikumNordstadt"]
        )
