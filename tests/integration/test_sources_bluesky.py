"""Bluesky connector against a local Jetstream (a ``websockets`` server speaking its JSON
events and ``cursor`` parameter) and a local AppView answering getProfiles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from aiohttp import web
from stormwatch_listener.domain.matching import WatchMatcher
from stormwatch_listener.domain.watchlist import (
    follow_accounts,
    monitored,
    parse_watch_list,
    to_targets,
)
from stormwatch_listener.sources.bluesky import REWIND_US, BlueskyConnector
from stormwatch_listener.sources.runner import SourceRunner
from stormwatch_listener.state import StateStore
from stormwatch_shared.settings import KafkaSettings
from test_sources_helpers import (
    Collector,
    FakeSleep,
    KafkaPublisher,
    LocalServer,
    MetricDelta,
    recent_iso,
)
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

pytestmark = pytest.mark.sources

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
PAULA = "did:plc:paula000000000000000000"
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
                "handles": {"bluesky": ["pflege-paula.bsky.social"]},
                "consent": {"recorded": "2026-02-01"},
            }
        ],
    }
)
ENTRIES, _ = monitored(WATCH, NOW.date())
T0 = 1_773_230_400_000_000  # 2026-03-11T12:00:00Z in microseconds


def post(
    n: int, text: str, did: str | None = None, *, reply_to: str | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": recent_iso(n),
        "langs": ["de"],
    }
    if reply_to:
        record["reply"] = {
            "parent": {"uri": reply_to, "cid": "bafy"},
            "root": {"uri": reply_to, "cid": "bafy"},
        }
    return {
        "did": did or f"did:plc:user{n:04d}",
        "time_us": T0 + n,
        "kind": "commit",
        "commit": {
            "rev": f"r{n}",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": f"k{n:04d}",
            "record": record,
            "cid": "bafy",
        },
    }


class FakeJetstream:
    """Keeps a log of events; each connection replays from ``cursor`` (or the start of
    ``live``), sends ``per_connection`` events, then closes (or holds)."""

    def __init__(self) -> None:
        self.log: list[Any] = []
        self.per_connection: list[int | None] = []
        self.reject: list[int] = []
        self.cursors: list[int | None] = []
        self.collections: list[list[str]] = []
        self.port = 0

    def process_request(self, connection: ServerConnection, request: Request) -> Any:
        if self.reject:
            return connection.respond(HTTPStatus(self.reject.pop(0)), "no\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        self.collections.append(query.get("wantedCollections", []))
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        self.cursors.append(cursor)
        events = [
            e
            for e in self.log
            if cursor is None or not isinstance(e, dict) or e["time_us"] >= cursor
        ]
        limit = self.per_connection.pop(0) if self.per_connection else None
        for e in events[:limit]:
            await ws.send(e if isinstance(e, str) else orjson.dumps(e).decode())
        if limit is None:
            await ws.wait_closed()

    async def __aenter__(self) -> FakeJetstream:
        self.server = await serve(
            self.handler, "127.0.0.1", 0, process_request=self.process_request
        )
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


def appview(calls: list[list[str]]) -> LocalServer:
    async def profiles(request: web.Request) -> web.Response:
        actors = request.query.getall("actors")
        calls.append(actors)
        out = []
        for a in actors:
            did = PAULA if a in (PAULA, "pflege-paula.bsky.social") else a
            handle = "pflege-paula.bsky.social" if did == PAULA else f"{a[8:]}.bsky.social"
            out.append({"did": did, "handle": handle, "followersCount": 1000 + len(handle)})
        return web.json_response({"profiles": out})

    app = web.Application()
    app.router.add_get("/xrpc/app.bsky.actor.getProfiles", profiles)
    return LocalServer(app)


async def make(
    js: FakeJetstream, av: LocalServer, tmp: Path, sink: Any, sleep: Any = None
) -> tuple[SourceRunner, WatchMatcher, StateStore]:
    connector = BlueskyConnector(
        jetstream_url=f"ws://127.0.0.1:{js.port}", appview_url=av.url, no_data_timeout_s=5
    )
    matcher = WatchMatcher(to_targets(ENTRIES), follow_accounts(ENTRIES))
    dids = await connector.resolve(list(WATCH.ambassadors[0].handles.bluesky))
    for handle, did in dids.items():
        matcher.add_account(f"bluesky:{did}", matcher.accounts[f"bluesky:{handle}"])
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


def test_posts_matched_locally_enriched_in_batches_of_25_and_pile_on_replies_seen(
    tmp_path: Path,
) -> None:
    calls: list[list[str]] = []
    own = post(1, "Heute Nachtdienst, wünscht mir Glück", PAULA)
    own_uri = f"at://{PAULA}/app.bsky.feed.post/k0001"
    js = FakeJetstream()
    js.log = [
        own,
        {
            "did": "did:plc:x",
            "time_us": T0 + 2,
            "kind": "identity",
            "identity": {"did": "did:plc:x", "handle": "x.bsky.social"},
        },
    ]
    # A pile-on: 30 replies that never name her, plus noise and a deletion.
    js.log += [
        post(10 + i, "Unglaublich, was du da schreibst", reply_to=own_uri) for i in range(30)
    ]
    js.log += [
        post(50, "Ganz anderes Thema"),
        post(51, "#KlinikumNordstadt Notaufnahme voll"),
        {
            "did": "did:plc:y",
            "time_us": T0 + 52,
            "kind": "commit",
            "commit": {
                "rev": "r",
                "operation": "delete",
                "collection": "app.bsky.feed.post",
                "rkey": "k1",
            },
        },
    ]
    sink = Collector()

    async def main() -> None:
        async with js, appview(calls) as av:
            runner, _, store = await make(js, av, tmp_path, sink.dead_letter)
            await sink.run(runner, lambda: store.load_cursor("bluesky") == str(T0 + 52))

    asyncio.run(main())
    ids = [m.id for m in sink.mentions]
    assert len(ids) == len(set(ids)) == 32
    replies = [m for m in sink.mentions if m.in_reply_to == f"bsky:{own_uri}"]
    assert len(replies) == 30
    assert all(
        m.author.followers > 1000 and m.author.handle.endswith(".bsky.social")
        for m in sink.mentions
    )
    assert js.collections[0] == ["app.bsky.feed.post"]
    assert calls[0] == ["pflege-paula.bsky.social"]  # resolving the watch list
    assert all(len(c) <= 25 for c in calls)
    assert sum(len(c) for c in calls[1:]) == 31  # 30 repliers + 1; Paula came from cache
    assert not sink.dead


def test_disconnect_resumes_with_cursor_through_kafka_nothing_lost_or_doubled(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
) -> None:
    js = FakeJetstream()
    js.log = [post(n, f"Klinikum Nordstadt Beitrag {n}") for n in range(1, 9)]
    js.per_connection = [3, 2]  # drop after 3, then after 2 more (replayed from cursor)
    pub = KafkaPublisher(kafka_settings)
    sleep = FakeSleep()

    async def main() -> None:
        async with js, appview([]) as av:
            runner, matcher, store = await make(js, av, tmp_path, pub.dead_letter, sleep)
            await pub.run(runner, matcher, lambda: store.load_cursor("bluesky") == str(T0 + 8))

    asyncio.run(main())
    ids = sorted(r["mention"]["id"] for r in pub.records())
    assert ids == sorted(
        f"bsky:at://did:plc:user{n:04d}/app.bsky.feed.post/k{n:04d}" for n in range(1, 9)
    )
    assert js.cursors[0] is None
    assert js.cursors[1] == T0 + 3 - REWIND_US
    assert sleep.delays == [0.25, 0.25]


def test_handshake_errors_back_off_and_malformed_frames_are_dead_lettered(
    tmp_path: Path,
) -> None:
    js = FakeJetstream()
    js.reject = [503, 503, 429]
    js.log = [
        "not json at all",
        {
            "kind": "commit",
            "time_us": T0 + 1,
            "did": "did:plc:z",
            "commit": {"operation": "create", "rkey": "k", "collection": "app.bsky.feed.post"},
        },
        post(3, "Klinikum Nordstadt"),
    ]
    sink = Collector()
    sleep = FakeSleep()
    delta = MetricDelta("bluesky", "stormwatch_listener_dead_letters_total")

    async def main() -> None:
        async with js, appview([]) as av:
            runner, _, _ = await make(js, av, tmp_path, sink.dead_letter, sleep)
            await sink.run(runner, lambda: len(sink.mentions) == 1)

    asyncio.run(main())
    assert sleep.delays == [5.0, 10.0, 60.0]
    assert sink.dead[0].payload == "not json at all"
    assert "without record" in sink.dead[1].reason
    assert delta["stormwatch_listener_dead_letters_total"] == 2
