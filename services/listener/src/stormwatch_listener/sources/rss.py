"""RSS/Atom feeds (e.g. a news search for the hospital's name), polled politely.

Conditional GET (ETag / Last-Modified) makes an unchanged feed cost the publisher one
304 and no parsing; the interval is minutes, not seconds (news search feeds block
aggressive clients). The validators are the cursor: they are saved only after every entry
of that fetch is in Kafka, so a crash refetches the feed instead of skipping its news.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser
import httpx
from stormwatch_shared.events import Mention

from stormwatch_listener.domain.backoff import BackoffPolicy
from stormwatch_listener.domain.normalize import NormalizeError, rss_mention
from stormwatch_listener.sources.base import RawEvent, SourceError

log = logging.getLogger("stormwatch.listener.rss")

USER_AGENT = "stormwatch-listener/0.1 (+https://github.com/stormwatch; polite feed reader)"


def retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class RssConnector:
    name = "rss"
    policy = BackoffPolicy()
    no_data_timeout_s: float | None = None
    """Polling: silence between polls is normal, the poll loop itself notices failures."""

    def __init__(
        self,
        *,
        feeds: Sequence[str],
        interval_s: float = 900.0,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.feeds = list(dict.fromkeys(feeds))
        self.interval_s = interval_s
        self.http = http or httpx.AsyncClient(
            timeout=30.0, follow_redirects=True, headers={"User-Agent": USER_AGENT}
        )
        self._sleep = sleep
        self._clock = clock
        self._validators: dict[str, dict[str, str]] = {}
        self.polls = 0

    async def start(self) -> None:
        return None

    def _load(self, cursor: str | None) -> None:
        if cursor:
            try:
                data = json.loads(cursor)
            except ValueError:
                return
            if isinstance(data, dict):
                self._validators = {k: dict(v) for k, v in data.items() if isinstance(v, dict)}

    async def stream(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        self._load(cursor)
        while True:
            for url in self.feeds:
                async for event in self._poll(url):
                    yield event
            self.polls += 1
            await self._sleep(self.interval_s)

    async def _poll(self, url: str) -> AsyncIterator[RawEvent]:
        headers = {}
        known = self._validators.get(url, {})
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("modified"):
            headers["If-Modified-Since"] = known["modified"]
        try:
            resp = await self.http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceError("network", f"rss: {url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 304:
            yield RawEvent(kind="connected")
            return
        if resp.status_code == 429 or (resp.status_code == 503 and "retry-after" in resp.headers):
            raise SourceError(
                "rate_limited" if resp.status_code == 429 else "http",
                f"rss: {url}: HTTP {resp.status_code}",
                status=resp.status_code,
                retry_after_s=retry_after(resp.headers.get("retry-after"), self._clock()),
            )
        if resp.status_code >= 400:
            raise SourceError(
                "http", f"rss: {url}: HTTP {resp.status_code}", status=resp.status_code
            )
        yield RawEvent(kind="connected")
        parsed = feedparser.parse(resp.content, response_headers=dict(resp.headers))
        if not parsed.entries and (parsed.bozo or not parsed.version):
            # Not a feed at all (a consent wall, an error page) or broken XML.
            reason = str(parsed.get("bozo_exception") or "no RSS/Atom feed in the response")
            yield RawEvent(payload=resp.content[:65536], data={"error": reason})
        else:
            title = str(parsed.feed.get("title") or url)
            fetched = self._clock().isoformat()
            for entry in parsed.entries:
                plain = {
                    k: v
                    for k, v in entry.items()
                    if k in ("link", "title", "summary", "published", "updated", "id", "language")
                }
                yield RawEvent(
                    payload=json.dumps(plain, default=str).encode(),
                    data={
                        "entry": plain,
                        "feed_url": url,
                        "feed_title": title,
                        "fetched_at": fetched,
                    },
                )
        validators = {}
        if resp.headers.get("etag"):
            validators["etag"] = resp.headers["etag"]
        if resp.headers.get("last-modified"):
            validators["modified"] = resp.headers["last-modified"]
        self._validators[url] = validators
        yield RawEvent(kind="position", cursor=json.dumps(self._validators, sort_keys=True))

    async def backfill(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        return
        yield  # a feed is its own backfill: the next poll returns what is still listed

    def normalize(self, event: RawEvent) -> Mention | None:
        data = event.data
        if not isinstance(data, dict):
            raise NormalizeError("rss: unreadable entry")
        if "error" in data:
            raise NormalizeError(f"rss: feed not parsable: {data['error']}")
        return rss_mention(
            data["entry"],
            feed_url=data["feed_url"],
            feed_title=data["feed_title"],
            fetched_at=datetime.fromisoformat(data["fetched_at"]),
        )

    async def enrich(self, mentions: list[Mention]) -> list[Mention]:
        return mentions

    async def close(self) -> None:
        await self.http.aclose()
