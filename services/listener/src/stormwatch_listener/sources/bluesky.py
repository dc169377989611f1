"""Bluesky via Jetstream: the public firehose as JSON over a websocket, filtered to posts.

Jetstream cannot filter by text, so every post passes through the local matcher and only
matches are enriched. The cursor is Jetstream's ``time_us``: reconnecting with it replays
from there (Jetstream keeps about a day), so the gap backfill is the stream itself. Follower
counts are not in the firehose; they come from ``app.bsky.actor.getProfiles`` (25 actors per
call, the documented maximum), cached for an hour because a pile-on is many posts by the
same few hundred accounts.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlencode

import httpx
import websockets
from stormwatch_shared.events import Author, Mention

from stormwatch_listener import metrics
from stormwatch_listener.domain.backoff import BackoffPolicy
from stormwatch_listener.domain.normalize import BSKY_POST, NormalizeError, bluesky_mention
from stormwatch_listener.sources.base import RawEvent, SourceError

log = logging.getLogger("stormwatch.listener.bluesky")

DEFAULT_JETSTREAM_URL = "wss://jetstream2.us-east.bsky.network"
DEFAULT_APPVIEW_URL = "https://public.api.bsky.app"
PROFILE_BATCH = 25
PROFILE_TTL_S = 3600.0
REWIND_US = 2_000_000
"""Resume a little before the cursor: Jetstream's order is per connection, and the seen-set
drops the overlap."""


class BlueskyConnector:
    name = "bluesky"
    policy = BackoffPolicy()

    def __init__(
        self,
        *,
        jetstream_url: str = DEFAULT_JETSTREAM_URL,
        appview_url: str = DEFAULT_APPVIEW_URL,
        no_data_timeout_s: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.jetstream_url = jetstream_url.rstrip("/")
        self.no_data_timeout_s: float | None = no_data_timeout_s
        self.http = http or httpx.AsyncClient(base_url=appview_url.rstrip("/"), timeout=10.0)
        self._profiles: dict[str, tuple[float, str, int]] = {}
        self.profile_calls: list[list[str]] = []
        self._max_time_us = 0

    async def start(self) -> None:
        return None

    def subscribe_url(self, cursor: str | None) -> str:
        params = [("wantedCollections", BSKY_POST)]
        if cursor and cursor.isdigit():
            params.append(("cursor", str(max(0, int(cursor) - REWIND_US))))
        return f"{self.jetstream_url}/subscribe?{urlencode(params)}"

    async def stream(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        if cursor and cursor.isdigit():
            self._max_time_us = max(self._max_time_us, int(cursor))
        try:
            async with websockets.connect(
                self.subscribe_url(cursor), max_size=2**20, open_timeout=10
            ) as ws:
                yield RawEvent(kind="connected")
                async for message in ws:
                    raw = message.encode() if isinstance(message, str) else bytes(message)
                    yield self._event(raw)
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            kind = "rate_limited" if status == 429 else "http"
            raise SourceError(kind, f"bluesky: HTTP {status}", status=status) from exc
        except (
            OSError,
            websockets.ConnectionClosed,
            websockets.InvalidHandshake,
            TimeoutError,
        ) as exc:
            raise SourceError("network", f"bluesky: {type(exc).__name__}: {exc}") from exc

    def _event(self, raw: bytes) -> RawEvent:
        try:
            data = json.loads(raw)
        except ValueError:
            return RawEvent(payload=raw)
        time_us = data.get("time_us") if isinstance(data, dict) else None
        cursor = None
        if isinstance(time_us, int) and time_us > 0:
            # Replayed (older) events after a rewind must not move the cursor back.
            self._max_time_us = max(self._max_time_us, time_us)
            cursor = str(self._max_time_us)
        return RawEvent(payload=raw, data=data, cursor=cursor)

    async def backfill(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        return
        yield  # the cursor on reconnect is the backfill

    def normalize(self, event: RawEvent) -> Mention | None:
        if not isinstance(event.data, dict):
            raise NormalizeError("bluesky: invalid JSON")
        return bluesky_mention(event.data)

    async def profiles(self, actors: Sequence[str]) -> dict[str, tuple[str, int]]:
        """``actor`` (DID or handle) -> (handle, followers), in batches of 25, cached."""
        now = time.monotonic()
        out: dict[str, tuple[str, int]] = {}
        missing = []
        for actor in dict.fromkeys(actors):
            hit = self._profiles.get(actor)
            if hit is not None and now - hit[0] < PROFILE_TTL_S:
                out[actor] = (hit[1], hit[2])
            else:
                missing.append(actor)
        for i in range(0, len(missing), PROFILE_BATCH):
            batch = missing[i : i + PROFILE_BATCH]
            self.profile_calls.append(batch)
            try:
                resp = await self.http.get(
                    "/xrpc/app.bsky.actor.getProfiles", params=[("actors", a) for a in batch]
                )
                resp.raise_for_status()
                found = resp.json().get("profiles", [])
            except (httpx.HTTPError, ValueError) as exc:
                metrics.ERRORS.labels(self.name).inc()
                log.warning("bluesky: getProfiles fehlgeschlagen / failed: %s", exc)
                continue
            for p in found:
                did, handle = p.get("did"), p.get("handle")
                if not isinstance(did, str) or not isinstance(handle, str):
                    continue
                followers = p.get("followersCount")
                entry = (now, handle, followers if isinstance(followers, int) else 0)
                self._profiles[did] = entry
                self._profiles[handle] = entry
                for key in (did, handle):
                    if key in batch:
                        out[key] = (entry[1], entry[2])
        return out

    async def resolve(self, handles: Sequence[str]) -> dict[str, str]:
        """Watch-list handles -> DIDs, so followed accounts match before enrichment."""
        dids = {h: h for h in handles if h.startswith("did:")}
        names = [h for h in handles if not h.startswith("did:")]
        if names:
            await self.profiles(names)
            for h in names:
                for did, (_, handle, _) in list(self._profiles.items()):
                    if did.startswith("did:") and handle.casefold() == h.casefold():
                        dids[h] = did
        return dids

    async def enrich(self, mentions: list[Mention]) -> list[Mention]:
        found = await self.profiles([m.author.id for m in mentions])
        out = []
        for m in mentions:
            hit = found.get(m.author.id)
            if hit is None:
                out.append(m)
                continue
            author = Author(id=m.author.id, handle=f"@{hit[0]}", followers=max(0, hit[1]))
            out.append(m.model_copy(update={"author": author}))
        return out

    async def close(self) -> None:
        await self.http.aclose()
