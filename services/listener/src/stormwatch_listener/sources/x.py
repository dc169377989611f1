"""X API v2: filtered stream (one rule per target, tagged with its id) plus recent search
to fill the gap after a reconnect (stream recovery needs higher access tiers).

Pointing tweepy at another base URL. ``tweepy.StreamingClient`` and ``tweepy.Client`` build
their URLs from a fixed ``https://api.twitter.com`` but send every request through their
``requests.Session`` (the public ``session`` attribute). ``requests`` picks the transport
adapter for a request by URL prefix (``Session.mount``, documented under "Transport
Adapters"). We mount a small ``HTTPAdapter`` on the X origins that rewrites the prefix to
the configured base URL before sending. Nothing in tweepy is patched or copied: its request
building, rule handling, stream parsing and error classes are used unchanged, and with the
default base URL nothing is mounted at all.

tweepy's stream loop would sleep and retry on its own. Our subclass disconnects on the first
error instead and reports it, so the shared runner applies the documented backoff (on an
injectable clock) and fills the gap with search before reading on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter
from stormwatch_shared.events import Mention

from stormwatch_listener.domain.backoff import X_POLICY, BackoffPolicy
from stormwatch_listener.domain.normalize import NormalizeError, x_mention
from stormwatch_listener.sources.base import FatalSourceError, RawEvent, SourceError
from stormwatch_listener.sources.budget import BudgetMeter

log = logging.getLogger("stormwatch.listener.x")

X_ORIGINS = ("https://api.twitter.com", "https://api.x.com")
DEFAULT_BASE_URL = "https://api.x.com"
NO_DATA_TIMEOUT_S = 20.0
"""X sends a keep-alive every 20 s at the latest; silence beyond that is a dead stream."""

TWEET_FIELDS = [
    "created_at",
    "lang",
    "author_id",
    "public_metrics",
    "referenced_tweets",
    "conversation_id",
]
USER_FIELDS = ["username", "public_metrics"]
EXPANSIONS = ["author_id"]


class BaseUrlAdapter(HTTPAdapter):
    """Sends requests addressed to the X API origins to ``base_url`` instead."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        url = request.url or ""
        for origin in X_ORIGINS:
            if url.startswith(origin + "/"):
                request.url = self.base_url + url[len(origin) :]
                break
        return super().send(request, *args, **kwargs)


def route_session(session: requests.Session, base_url: str) -> None:
    if base_url.rstrip("/") in X_ORIGINS:
        return
    adapter = BaseUrlAdapter(base_url)
    for origin in X_ORIGINS:
        session.mount(origin + "/", adapter)
    # Proxy settings from the environment were meant for the real API, not this base URL.
    session.trust_env = False


_DONE = object()


class _Stream(tweepy.StreamingClient):  # type: ignore[misc]
    """Hands every line to ``sink`` and stops at the first error instead of retrying."""

    def __init__(self, bearer_token: str, base_url: str, sink: Callable[[Any], None]) -> None:
        super().__init__(bearer_token, wait_on_rate_limit=False)
        route_session(self.session, base_url)
        self._sink = sink
        self.status: int | None = None
        self.failure: str | None = None

    def on_connect(self) -> None:
        self._sink(RawEvent(kind="connected"))

    def on_data(self, raw_data: bytes) -> None:
        self._sink(bytes(raw_data))

    def on_keep_alive(self) -> None:
        self._sink(RawEvent(kind="keepalive"))

    def on_request_error(self, status_code: int) -> None:
        self.status = status_code
        self.disconnect()

    def on_connection_error(self) -> None:
        self.failure = "network error or read timeout"
        self.disconnect()

    def on_closed(self, response: Any) -> None:
        self.failure = "stream closed by X"
        self.disconnect()

    def on_exception(self, exception: Exception) -> None:
        self.failure = f"{type(exception).__name__}: {exception}"

    def on_disconnect(self) -> None:
        self._sink(_DONE)


def _http_error(exc: tweepy.HTTPException, what: str) -> Exception:
    status = exc.response.status_code
    if status in (401, 403):
        return FatalSourceError(f"x: {what}: HTTP {status} (token or access level)")
    if status == 429:
        return SourceError("rate_limited", f"x: {what}: HTTP 429", status=429)
    return SourceError("http", f"x: {what}: HTTP {status}", status=status)


class XConnector:
    name = "x"
    policy: BackoffPolicy = X_POLICY
    no_data_timeout_s: float | None = NO_DATA_TIMEOUT_S

    def __init__(
        self,
        *,
        bearer_token: str,
        rules: Sequence[tuple[str, str]],
        budget: BudgetMeter,
        base_url: str = DEFAULT_BASE_URL,
        no_data_timeout_s: float = NO_DATA_TIMEOUT_S,
        search_page_size: int = 100,
    ) -> None:
        if not bearer_token:
            raise FatalSourceError(
                "x: kein Bearer-Token / no bearer token (LISTENER_X_BEARER_TOKEN)"
            )
        self.bearer_token = bearer_token
        self.rules = list(rules)
        self.budget = budget
        self.base_url = base_url
        self.no_data_timeout_s = no_data_timeout_s
        self.search_page_size = search_page_size
        self._max_id = 0
        self.client = tweepy.Client(bearer_token, return_type=dict, wait_on_rate_limit=False)
        route_session(self.client.session, base_url)

    # --- set-up ---------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._sync_rules)

    def _sync_rules(self) -> None:
        """Make the stream's rules exactly ours: one per target, tag = target id."""
        admin = _Stream(self.bearer_token, self.base_url, lambda _: None)
        try:
            current = admin.get_rules().data or []
            wanted = {(value, tag) for value, tag in self.rules}
            stale = [r.id for r in current if (r.value, r.tag) not in wanted]
            have = {(r.value, r.tag) for r in current}
            missing = [
                tweepy.StreamRule(value=v, tag=t) for v, t in self.rules if (v, t) not in have
            ]
            if stale:
                admin.delete_rules(stale)
            if missing:
                response = admin.add_rules(missing)
                for err in response.errors or []:
                    raise FatalSourceError(f"x: Regel abgelehnt / rule rejected: {err}")
            log.info(
                "x: %d Regeln aktiv / rules active (%d added, %d removed)",
                len(self.rules),
                len(missing),
                len(stale),
            )
        except tweepy.HTTPException as exc:
            raise _http_error(exc, "rules") from exc
        except requests.RequestException as exc:
            raise SourceError("network", f"x: rules: {exc}") from exc
        finally:
            admin.session.close()

    # --- stream ---------------------------------------------------------------------------

    def _cursor(self, tweet_id: str) -> str:
        if tweet_id.isdigit():
            self._max_id = max(self._max_id, int(tweet_id))
        return str(self._max_id)

    def _init_cursor(self, cursor: str | None) -> None:
        if cursor and cursor.isdigit():
            self._max_id = max(self._max_id, int(cursor))

    async def stream(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        self._init_cursor(cursor)
        self.budget.check()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def sink(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        stream = _Stream(self.bearer_token, self.base_url, sink)
        thread = threading.Thread(
            target=stream.filter,
            kwargs={
                "expansions": EXPANSIONS,
                "tweet_fields": TWEET_FIELDS,
                "user_fields": USER_FIELDS,
            },
            name="x-stream",
            daemon=True,  # a read blocked in requests must never hold the process open
        )
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    status = stream.status
                    if status in (401, 403):
                        raise FatalSourceError(f"x: stream: HTTP {status}")
                    if status == 429:
                        raise SourceError("rate_limited", "x: stream: HTTP 429", status=429)
                    if status is not None:
                        raise SourceError("http", f"x: stream: HTTP {status}", status=status)
                    raise SourceError("network", f"x: stream: {stream.failure or 'ended'}")
                if isinstance(item, RawEvent):
                    yield item
                    continue
                event = self._event(item)
                if event.kind == "post":
                    self.budget.record(1)
                yield event
                if event.kind == "post":
                    self.budget.check()
        finally:
            stream.disconnect()

    def _event(self, raw: bytes) -> RawEvent:
        try:
            data = json.loads(raw)
        except ValueError:
            return RawEvent(payload=raw)
        if isinstance(data, dict) and "data" not in data and "errors" in data:
            # Operational messages (e.g. an announced disconnect) are not posts.
            log.warning("x: Meldung im Stream / stream message: %s", str(data["errors"])[:300])
            return RawEvent(kind="position", payload=raw)
        tweet = data.get("data") if isinstance(data, dict) else None
        tweet_id = tweet.get("id") if isinstance(tweet, dict) else None
        cursor = self._cursor(tweet_id) if isinstance(tweet_id, str) else None
        return RawEvent(payload=raw, data=data, cursor=cursor)

    # --- backfill -------------------------------------------------------------------------

    async def backfill(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """Recent search since the last seen id, per rule; oldest first."""
        self._init_cursor(cursor)
        if not cursor or not cursor.isdigit():
            return
        found: dict[int, dict[str, Any]] = {}
        for value, tag in self.rules:
            token: str | None = None
            while True:
                self.budget.check()
                page = await asyncio.to_thread(self._search, value, cursor, token)
                data = page.get("data") or []
                self.budget.record(len(data))
                users = (page.get("includes") or {}).get("users") or []
                for tweet in data:
                    if isinstance(tweet, dict) and str(tweet.get("id", "")).isdigit():
                        found[int(tweet["id"])] = {"data": tweet, "includes": {"users": users}}
                token = (page.get("meta") or {}).get("next_token")
                if not token:
                    break
            log.debug("x: Suche / search for %s done", tag)
        for tweet_id in sorted(found):
            payload = found[tweet_id]
            yield RawEvent(
                payload=json.dumps(payload).encode(),
                data=payload,
                cursor=self._cursor(str(tweet_id)),
            )

    def _search(self, query: str, since_id: str, token: str | None) -> dict[str, Any]:
        remaining = self.budget.remaining()
        size = self.search_page_size if remaining is None else min(self.search_page_size, remaining)
        try:
            result: dict[str, Any] = self.client.search_recent_tweets(
                query,
                since_id=since_id,
                max_results=max(10, size),
                next_token=token,
                expansions=EXPANSIONS,
                tweet_fields=TWEET_FIELDS,
                user_fields=USER_FIELDS,
            )
            return result
        except tweepy.BadRequest as exc:
            # e.g. since_id older than the 7-day window: nothing more can be recovered.
            log.warning("x: Suche abgelehnt / search refused: %s", exc)
            return {}
        except tweepy.HTTPException as exc:
            raise _http_error(exc, "search") from exc
        except requests.RequestException as exc:
            raise SourceError("network", f"x: search: {exc}") from exc

    # --- the rest -------------------------------------------------------------------------

    def normalize(self, event: RawEvent) -> Mention | None:
        if not isinstance(event.data, dict):
            raise NormalizeError("x: invalid JSON")
        return x_mention(event.data)

    async def enrich(self, mentions: list[Mention]) -> list[Mention]:
        return mentions  # follower counts arrive with the post (includes.users)

    async def close(self) -> None:
        self.client.session.close()
