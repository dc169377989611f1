"""Mastodon via Mastodon.py: hashtag streams (and optionally the public stream) of one
server, over server-sent events.

Since Mastodon 4.2 these streams need a user access token. Streams cannot filter by
keyword, so keywords are matched locally. After a reconnect each timeline is read again
with ``min_id`` (the per-server id: that is what the API pages by), while deduplication uses
the status URI, which is the same on every server.

Mastodon.py's stream call blocks, so each stream runs in a daemon thread that hands events
to the event loop. Its own reconnect is off (``run_async=False``); the shared runner decides.
The status code of a refused stream is read from a ``requests`` response hook on the
session we give Mastodon.py, because its error for a refused stream carries only the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import requests
from mastodon import Mastodon, MastodonError, StreamListener
from mastodon.errors import (
    MastodonAPIError,
    MastodonMalformedEventError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonUnauthorizedError,
)
from stormwatch_shared.events import Mention

from stormwatch_listener.domain.backoff import BackoffPolicy
from stormwatch_listener.domain.normalize import NormalizeError, mastodon_mention
from stormwatch_listener.sources.base import FatalSourceError, RawEvent, SourceError

log = logging.getLogger("stormwatch.listener.mastodon")

PUBLIC = "public"
_DONE = object()
MAX_PARENT_CACHE = 50_000


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class _Listener(StreamListener):  # type: ignore[misc]
    def __init__(
        self, stream: str, sink: Callable[[Any], None], parent_uri: Callable[[Any], str | None]
    ) -> None:
        super().__init__()
        self.stream = stream
        self._sink = sink
        self._parent_uri = parent_uri

    def on_update(self, status: Any) -> None:
        parent = self._parent_uri(status)
        raw = json.dumps(status, default=_json_default).encode()
        self._sink(
            RawEvent(
                payload=raw, data={"stream": self.stream, "status": status, "parent_uri": parent}
            )
        )

    def handle_heartbeat(self) -> None:
        self._sink(RawEvent(kind="keepalive"))

    def on_abort(self, err: Exception) -> None:
        # Mastodon.py drops the connection on a malformed event; keep what it was so it can
        # be dead-lettered. The runner reconnects and min_id backfill closes the gap.
        if isinstance(err, MastodonMalformedEventError):
            raw = " ".join(str(a) for a in err.args[1:]) or str(err)
            self._sink(RawEvent(payload=raw.encode(), data={"malformed": str(err.args[0])}))

    def on_unknown_event(self, name: str, unknown_event: Any = None) -> None:
        return None


class MastodonConnector:
    name = "mastodon"
    policy = BackoffPolicy()

    def __init__(
        self,
        *,
        api_base_url: str,
        access_token: str,
        hashtags: Sequence[str],
        public: bool = False,
        no_data_timeout_s: float = 60.0,
        request_timeout_s: float = 30.0,
    ) -> None:
        if not access_token:
            raise FatalSourceError(
                "mastodon: Streams brauchen seit Mastodon 4.2 ein Benutzer-Token / streams "
                "need a user access token since Mastodon 4.2 (LISTENER_MASTODON_ACCESS_TOKEN)"
            )
        self.streams = [t.removeprefix("#") for t in hashtags] + ([PUBLIC] if public else [])
        if not self.streams:
            raise FatalSourceError(
                "mastodon: keine Hashtags und kein public stream / nothing "
                "to stream (hashtags in the watch list or "
                "LISTENER_MASTODON_PUBLIC=true)"
            )
        self.no_data_timeout_s: float | None = no_data_timeout_s
        self.last_status: int | None = None
        session = requests.Session()
        session.hooks["response"].append(self._remember_status)
        self.api = Mastodon(
            api_base_url=api_base_url,
            access_token=access_token,
            session=session,
            ratelimit_method="throw",
            request_timeout=request_timeout_s,
            version_check_mode="none",
        )
        self._positions: dict[str, int] = {}
        self._uris: dict[str, str] = {}

    def _remember_status(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "/api/v1/streaming" in (response.url or ""):
            self.last_status = response.status_code

    async def start(self) -> None:
        return None

    # --- cursor: the newest per-server id per stream ------------------------------------

    def _load(self, cursor: str | None) -> None:
        if not cursor:
            return
        try:
            data = json.loads(cursor)
        except ValueError:
            return
        if isinstance(data, dict):
            for k, v in data.items():
                if str(v).isdigit():
                    self._positions[k] = max(self._positions.get(k, 0), int(v))

    def _advance(self, stream: str, status_id: Any) -> str:
        if str(status_id).isdigit():
            self._positions[stream] = max(self._positions.get(stream, 0), int(status_id))
        return json.dumps(self._positions, sort_keys=True)

    def _parent_uri(self, status: Any) -> str | None:
        """The URI of the status replied to: from statuses seen, else one API call."""
        if status.get("reblog"):
            return None
        self._uris[str(status.get("id"))] = str(status.get("uri"))
        if len(self._uris) > MAX_PARENT_CACHE:
            self._uris.clear()
        parent_id = status.get("in_reply_to_id")
        if parent_id is None:
            return None
        known = self._uris.get(str(parent_id))
        if known:
            return known
        try:
            parent = self.api.status(parent_id)
        except MastodonError as exc:
            log.debug("mastodon: parent %s not readable: %s", parent_id, exc)
            return None
        uri = parent.get("uri")
        if isinstance(uri, str):
            self._uris[str(parent_id)] = uri
            return uri
        return None

    # --- stream ---------------------------------------------------------------------------

    def _run(self, stream: str, listener: _Listener, sink: Callable[[Any], None]) -> None:
        try:
            if stream == PUBLIC:
                self.api.stream_public(listener, run_async=False)
            else:
                self.api.stream_hashtag(stream, listener, run_async=False)
            sink((_DONE, stream, None))
        except Exception as exc:
            sink((_DONE, stream, exc))

    def _classify(self, stream: str, exc: Exception | None) -> Exception:
        status = self.last_status
        if isinstance(exc, MastodonUnauthorizedError) or status in (401, 403):
            return FatalSourceError(f"mastodon: {stream}: HTTP {status} (token?)")
        if isinstance(exc, MastodonRatelimitError) or status == 429:
            return SourceError("rate_limited", f"mastodon: {stream}: HTTP 429", status=429)
        if isinstance(exc, MastodonNetworkError) and status is not None and status >= 400:
            return SourceError("http", f"mastodon: {stream}: HTTP {status}", status=status)
        if isinstance(exc, MastodonAPIError) and not isinstance(exc, MastodonNetworkError):
            return SourceError("http", f"mastodon: {stream}: {exc}", status=status)
        return SourceError("network", f"mastodon: {stream}: {exc or 'stream ended'}")

    async def stream(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        self._load(cursor)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def sink(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        self.last_status = None
        for stream in self.streams:
            listener = _Listener(stream, sink, self._parent_uri)
            threading.Thread(
                target=self._run,
                args=(stream, listener, sink),
                name=f"mastodon-{stream}",
                daemon=True,
            ).start()
        # One stream failing ends this connection (all of them): the runner reconnects
        # every stream and backfills each from its own position.
        while True:
            item = await queue.get()
            if isinstance(item, tuple) and item and item[0] is _DONE:
                raise self._classify(item[1], item[2])
            if item.kind == "post" and isinstance(item.data, dict) and "status" in item.data:
                status = item.data["status"]
                cursor = self._advance(item.data["stream"], status.get("id"))
                item = RawEvent(payload=item.payload, data=item.data, cursor=cursor)
            yield item

    async def backfill(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """Each timeline from its last id on (``min_id``), oldest first, page by page."""
        self._load(cursor)
        for stream in self.streams:
            since = self._positions.get(stream)
            if since is None:
                continue
            while True:
                try:
                    page = await asyncio.to_thread(self._timeline, stream, since)
                except MastodonNotFoundError:
                    break
                except MastodonError as exc:
                    raise self._classify(stream, exc) from exc
                if not page:
                    break
                for status in sorted(page, key=lambda s: int(s["id"])):
                    parent = await asyncio.to_thread(self._parent_uri, status)
                    raw = json.dumps(status, default=_json_default).encode()
                    since = max(since, int(status["id"]))
                    yield RawEvent(
                        payload=raw,
                        data={"stream": stream, "status": status, "parent_uri": parent},
                        cursor=self._advance(stream, status["id"]),
                    )

    def _timeline(self, stream: str, min_id: int) -> list[Any]:
        if stream == PUBLIC:
            return list(self.api.timeline_public(min_id=min_id, limit=40))
        return list(self.api.timeline_hashtag(stream, min_id=min_id, limit=40))

    def normalize(self, event: RawEvent) -> Mention | None:
        data = event.data
        if not isinstance(data, dict):
            raise NormalizeError("mastodon: unreadable event")
        if "malformed" in data:
            raise NormalizeError(f"mastodon: {data['malformed']}")
        return mastodon_mention(data["status"], data.get("parent_uri"))

    async def enrich(self, mentions: list[Mention]) -> list[Mention]:
        return mentions  # followers_count comes with the account

    async def close(self) -> None:
        self.api.session.close()
