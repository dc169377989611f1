"""X connector: the real tweepy clients against a local server speaking X API v2 (rules,
the chunked filtered stream with keep-alives, recent search)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from stormwatch_listener.domain.matching import WatchMatcher
from stormwatch_listener.domain.watchlist import monitored, parse_watch_list, to_targets, x_rules
from stormwatch_listener.sources.budget import BudgetMeter
from stormwatch_listener.sources.runner import SourceRunner
from stormwatch_listener.sources.x import XConnector
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

pytestmark = pytest.mark.sources

TODAY = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
WATCH = parse_watch_list(
    {
        "organisation": {
            "id": "hospital",
            "name": "Klinikum Nordstadt",
            "hashtags": ["KlinikumNordstadt"],
            "handles": {"x": ["KlinikumNord"]},
        },
        "ambassadors": [
            {
                "id": "paula",
                "name": "Paula Brandt",
                "handles": {"x": ["pflege_paula"]},
                "consent": {"recorded": "2026-01-15"},
            },
            {"id": "jonas", "name": "Jonas Keller", "handles": {"x": ["dr_jonas_k"]}},
        ],
    }
)
ENTRIES, SKIPPED = monitored(WATCH, TODAY.date())


def tweet(
    n: int, text: str, *, user: str = "anna", followers: int = 10, reply_to: int | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(n),
        "text": text,
        "author_id": f"u-{user}",
        "lang": "de",
        "created_at": recent_iso(n),
        "public_metrics": {"like_count": 1, "retweet_count": 0, "reply_count": 0, "quote_count": 0},
    }
    if reply_to is not None:
        data["referenced_tweets"] = [{"type": "replied_to", "id": str(reply_to)}]
    return {
        "data": data,
        "includes": {
            "users": [
                {
                    "id": f"u-{user}",
                    "username": user,
                    "public_metrics": {"followers_count": followers},
                }
            ]
        },
        "matching_rules": [{"id": "1", "tag": "hospital"}],
    }


class FakeX:
    """Each stream connection plays the next script: an HTTP status, or a list of steps
    (a tweet id, raw bytes, "keepalive", "stall" = silence, "hold" = keep-alives forever);
    a script that ends without "hold"/"stall" closes the connection."""

    def __init__(self) -> None:
        self.tweets: dict[int, dict[str, Any]] = {}
        self.searchable: set[int] = set()
        self.scripts: list[Any] = []
        self.rules: list[dict[str, str]] = []
        self.rule_requests: list[dict[str, Any]] = []
        self.search_calls: list[dict[str, str]] = []
        self.connects = 0
        self.auth: list[str] = []
        app = web.Application()
        app.router.add_get("/2/tweets/search/stream", self.stream)
        app.router.add_get("/2/tweets/search/stream/rules", self.get_rules)
        app.router.add_post("/2/tweets/search/stream/rules", self.post_rules)
        app.router.add_get("/2/tweets/search/recent", self.search)
        self.server = LocalServer(app)

    def add(self, *tweets: dict[str, Any], searchable: bool = False) -> None:
        for t in tweets:
            n = int(t["data"]["id"])
            self.tweets[n] = t
            if searchable:
                self.searchable.add(n)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.connects += 1
        self.auth.append(request.headers.get("Authorization", ""))
        script = self.scripts.pop(0) if self.scripts else ["hold"]
        if isinstance(script, int):
            return web.json_response({"title": "error", "status": script}, status=script)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for step in script:
            if step == "keepalive":
                await resp.write(b"\r\n")
            elif step == "stall":
                await asyncio.sleep(60)
            elif step == "hold":
                while True:
                    await resp.write(b"\r\n")
                    await asyncio.sleep(0.05)
            elif isinstance(step, bytes):
                await resp.write(step + b"\r\n")
            else:
                await resp.write(orjson.dumps(self.tweets[step]) + b"\r\n")
            await asyncio.sleep(0.005)
        return resp

    async def get_rules(self, request: web.Request) -> web.Response:
        meta = {"sent": "2026-03-11T12:00:00Z", "result_count": len(self.rules)}
        return web.json_response(
            {"data": self.rules, "meta": meta} if self.rules else {"meta": meta}
        )

    async def post_rules(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.rule_requests.append(body)
        for rule in body.get("add", []):
            self.rules.append({"id": str(len(self.rules) + 1), **rule})
        ids = set(body.get("delete", {}).get("ids", []))
        self.rules = [r for r in self.rules if r["id"] not in ids]
        return web.json_response({"data": self.rules, "meta": {"sent": "x", "summary": {}}})

    async def search(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.search_calls.append(q)
        since = int(q.get("since_id", "0"))
        size = int(q.get("max_results", "10"))
        ids = sorted((i for i in self.searchable if i > since), reverse=True)
        start = int(q.get("next_token", "0"))
        page = ids[start : start + size]
        body: dict[str, Any] = {"meta": {"result_count": len(page)}}
        if page:
            body["data"] = [self.tweets[i]["data"] for i in page]
            body["includes"] = {
                "users": [u for i in page for u in self.tweets[i]["includes"]["users"]]
            }
        if start + size < len(ids):
            body["meta"]["next_token"] = str(start + size)
        return web.json_response(body)


def make_runner(
    fake: FakeX,
    tmp_path: Path,
    sink: Any,
    *,
    sleep: Any = None,
    budget: int = 0,
    no_data: float = 20.0,
    store: StateStore | None = None,
) -> tuple[SourceRunner, WatchMatcher, StateStore]:
    store = store or StateStore(tmp_path / "state.sqlite")
    matcher = WatchMatcher(to_targets(ENTRIES))
    connector = XConnector(
        bearer_token="test-token",
        rules=x_rules(ENTRIES),
        budget=BudgetMeter(store, "x", budget, lambda: TODAY),
        base_url=fake.server.url,
        no_data_timeout_s=no_data,
    )
    runner = SourceRunner(
        connector,
        matcher,
        store,
        dead_letters=sink,
        sleep=sleep or FakeSleep(),
        clock=lambda: TODAY,
        cursor_every_s=0,
    )
    return runner, matcher, store


def test_stream_publishes_through_kafka_keyed_by_target_and_saves_cursor_after_ack(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    fake = FakeX()
    fake.add(
        tweet(1, "Nie wieder Klinikum Nordstadt!"),
        tweet(2, "Schönes Wetter heute"),
        tweet(3, "@pflege_paula danke für alles", reply_to=1),
        tweet(4, "@dr_jonas_k hallo"),
    )
    fake.scripts = [["keepalive", 1, 2, "keepalive", 3, 4, "hold"]]
    pub = KafkaPublisher(kafka_settings)
    delta = MetricDelta(
        "x", "stormwatch_listener_received_total", "stormwatch_listener_published_total"
    )

    async def main() -> None:
        async with fake.server:
            runner, matcher, store = make_runner(fake, tmp_path, pub.dead_letter)
            await pub.run(runner, matcher, lambda: store.load_cursor("x") == "4")

    asyncio.run(main())
    records = pub.records()
    got = sorted((r["mention"]["id"], r["target_id"]) for r in records)
    # Jonas gave no consent: no rule, and his handle is not matched. Tweet 3 names Paula and
    # replies to tweet 1, so it concerns the hospital too (replies inherit their parent's).
    assert got == [("x:1", "hospital"), ("x:3", "hospital"), ("x:3", "paula")]
    assert sorted(pub.keys()) == [b"hospital", b"hospital", b"paula"]
    by_id = {r["mention"]["id"]: r["mention"] for r in records}
    assert by_id["x:3"]["in_reply_to"] == "x:1"
    assert by_id["x:1"]["author"] == {"id": "u-anna", "handle": "@anna", "followers": 10}
    assert {r["tag"] for r in fake.rules} == {"hospital", "paula"}
    assert all(len(r["value"]) <= 1024 for r in fake.rules)
    assert fake.auth[0] == "Bearer test-token"
    assert delta["stormwatch_listener_received_total"] == 4
    assert delta["stormwatch_listener_published_total"] == 2
    assert StateStore(tmp_path / "state.sqlite").load_cursor("x") == "4"


def test_reconnect_backfills_the_gap_with_search_nothing_lost_or_doubled(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    fake = FakeX()
    texts = {n: f"Klinikum Nordstadt Meldung {n}" for n in range(101, 106)}
    fake.add(*(tweet(n, t) for n, t in texts.items()), searchable=True)
    # First connection delivers 101, 102 and drops; 103 and 104 appear meanwhile (search
    # only); the second connection starts with 104 again (overlap) and then 105.
    fake.scripts = [[101, 102], [104, 105, "hold"]]
    pub = KafkaPublisher(kafka_settings)
    sleep = FakeSleep()

    async def main() -> None:
        async with fake.server:
            runner, matcher, store = make_runner(fake, tmp_path, pub.dead_letter, sleep=sleep)
            await pub.run(runner, matcher, lambda: store.load_cursor("x") == "105")

    asyncio.run(main())
    ids = [r["mention"]["id"] for r in pub.records()]
    assert sorted(ids) == [f"x:{n}" for n in range(101, 106)]
    assert fake.search_calls and fake.search_calls[0]["since_id"] == "102"
    assert sleep.delays == [0.25]  # a dropped stream is a network error: linear backoff


def test_restart_resumes_from_the_saved_cursor_without_republishing(tmp_path: Path) -> None:
    fake = FakeX()
    fake.add(*(tweet(n, f"#KlinikumNordstadt {n}") for n in (201, 202, 203)), searchable=True)
    fake.scripts = [[201, 202, "hold"], [202, 203, "hold"]]
    first, second = Collector(), Collector()

    async def main() -> None:
        async with fake.server:
            runner, _, store = make_runner(fake, tmp_path, first.dead_letter)
            await first.run(runner, lambda: store.load_cursor("x") == "202")
            store.close()
            # A new process: the seen-set and cursor come from the file.
            runner, _, store = make_runner(fake, tmp_path, second.dead_letter)
            await second.run(runner, lambda: store.load_cursor("x") == "203")

    asyncio.run(main())
    assert [m.id for m in first.mentions] == ["x:201", "x:202"]
    assert [m.id for m in second.mentions] == ["x:203"]


def test_http_errors_and_429_back_off_as_x_documents(tmp_path: Path) -> None:
    fake = FakeX()
    fake.add(tweet(7, "Klinikum Nordstadt"))
    fake.scripts = [503, 500, 429, 429, 502, [7], ["hold"]]
    sink = Collector()
    sleep = FakeSleep()
    delta = MetricDelta("x", "stormwatch_listener_reconnects_total")

    async def main() -> None:
        async with fake.server:
            runner, _, _ = make_runner(fake, tmp_path, sink.dead_letter, sleep=sleep)
            await sink.run(runner, lambda: len(sink.mentions) == 1 and fake.connects >= 7)

    asyncio.run(main())
    # HTTP errors double from 5 s, 429 doubles from 60 s (separately); a successful
    # connection resets both, and the dropped stream after it waits 250 ms.
    assert sleep.delays == [5.0, 10.0, 60.0, 120.0, 20.0, 0.25]
    assert delta["stormwatch_listener_reconnects_total"] == 6


def test_network_errors_back_off_linearly_up_to_16_s(tmp_path: Path) -> None:
    fake = FakeX()
    sink = Collector()
    sleep = FakeSleep()

    async def main() -> None:
        # Nothing listens on the port once the server is gone: connection refused.
        async with fake.server:
            pass
        runner, _, _ = make_runner(fake, tmp_path, sink.dead_letter, sleep=sleep)
        await sink.run(runner, lambda: len(sleep.delays) >= 66, limit_s=20)

    asyncio.run(main())
    expected = [min(0.25 * n, 16.0) for n in range(1, 67)]
    assert sleep.delays[:66] == expected


def test_malformed_payloads_are_dead_lettered_to_kafka_and_not_fatal(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    fake = FakeX()
    fake.add(tweet(31, "Klinikum Nordstadt ist super"))
    no_author = orjson.dumps(
        {"data": {"id": "30", "text": "Klinikum Nordstadt", "created_at": "2026-03-11T11:00:00Z"}}
    )
    fake.scripts = [[b"{not json", no_author, 31, "hold"]]
    pub = KafkaPublisher(kafka_settings)
    delta = MetricDelta(
        "x", "stormwatch_listener_dead_letters_total", "stormwatch_listener_errors_total"
    )

    async def main() -> None:
        async with fake.server:
            runner, matcher, store = make_runner(fake, tmp_path, pub.dead_letter)
            await pub.run(runner, matcher, lambda: store.load_cursor("x") == "31")

    asyncio.run(main())
    assert [r["mention"]["id"] for r in pub.records()] == ["x:31"]
    dead = pub.dead_letters()
    assert [d["payload"] for d in dead] == ["{not json", no_author.decode()]
    assert "invalid JSON" in dead[0]["reason"] and "author_id" in dead[1]["reason"]
    assert all(d["service"] == "stormwatch-listener" for d in dead)
    assert delta["stormwatch_listener_dead_letters_total"] == 2
    assert delta["stormwatch_listener_errors_total"] == 2
    assert fake.connects == 1  # no reconnect for a bad payload


def test_monthly_budget_is_respected_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeX()
    fake.add(*(tweet(n, f"Klinikum Nordstadt {n}") for n in range(41, 46)))
    fake.scripts = [[41, 42, 43, 44, 45, "hold"]]
    sink = Collector()
    seen_exhausted: list[float] = []

    def on_sleep(delay: float) -> None:
        from test_sources_helpers import metric

        seen_exhausted.append(metric("stormwatch_listener_budget_exhausted", "x"))
        runner.stop()

    sleep = FakeSleep(on_sleep)

    async def main() -> None:
        nonlocal runner
        async with fake.server:
            runner, _, _ = make_runner(fake, tmp_path, sink.dead_letter, sleep=sleep, budget=3)
            await sink.run(runner, lambda: bool(sleep.delays))

    runner: Any = None
    with caplog.at_level(logging.ERROR, logger="stormwatch.listener.runner"):
        asyncio.run(main())
    assert [m.id for m in sink.mentions] == ["x:41", "x:42", "x:43"]
    from test_sources_helpers import metric

    assert metric("stormwatch_listener_budget_used", "x") == 3
    assert metric("stormwatch_listener_budget_limit", "x") == 3
    assert seen_exhausted == [1.0]
    # Paused until the month is over (the clock says 11 March, 12:00 UTC).
    resume = datetime(2026, 4, 1, tzinfo=UTC)
    assert sleep.delays == [(resume - TODAY).total_seconds()]
    assert any("budget used up" in r.getMessage() for r in caplog.records)
    assert StateStore(tmp_path / "state.sqlite").budget_used("x", "2026-03") == 3


def test_silence_beyond_the_watchdog_means_reconnect(tmp_path: Path) -> None:
    fake = FakeX()
    fake.add(tweet(51, "Klinikum Nordstadt eins"), tweet(52, "Klinikum Nordstadt zwei"))
    fake.scripts = [[51, "stall"], [52, "hold"]]
    sink = Collector()
    sleep = FakeSleep()
    delta = MetricDelta("x", "stormwatch_listener_reconnects_total")

    async def main() -> None:
        async with fake.server:
            runner, _, _ = make_runner(fake, tmp_path, sink.dead_letter, sleep=sleep, no_data=0.4)
            await sink.run(runner, lambda: len(sink.mentions) == 2)

    asyncio.run(main())
    assert [m.id for m in sink.mentions] == ["x:51", "x:52"]
    assert fake.connects == 2
    assert sleep.delays == [0.25]
    assert delta["stormwatch_listener_reconnects_total"] == 1
