"""Pure normalizers: one network's raw post -> the common ``Mention``.

Ids are canonical (``x:<id>``, ``masto:<uri>``, ``bsky:<at-uri>``, ``rss:<hash>``) because
they are what deduplication and ``in_reply_to`` rest on: a Mastodon status has a different
numeric id on every server that sees it, but one URI; a news article reached through two
tracking links is still one URL. Anything that is not a usable post raises
``NormalizeError`` (the runner dead-letters it); things that are valid but not posts (a
deletion, an identity event) return ``None``.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError
from stormwatch_shared.events import MAX_TEXT_CHARS, Author, EngagementMetrics, Mention

BSKY_POST = "app.bsky.feed.post"


class NormalizeError(ValueError):
    """The payload cannot become a mention; the message is the dead-letter reason."""


def _str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise NormalizeError(f"{where}: missing or empty field {key!r}")
    return value


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise NormalizeError(f"{where}: bad timestamp {value[:40]!r}") from exc
    else:
        raise NormalizeError(f"{where}: missing timestamp")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _mention(**fields: Any) -> Mention:
    text = fields.get("text") or ""
    fields["text"] = text[:MAX_TEXT_CHARS]
    try:
        return Mention(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise NormalizeError(f"{fields.get('id', '?')}: {where}: {first['msg']}") from exc


# --- X API v2 -------------------------------------------------------------------------


def x_mention(payload: Mapping[str, Any]) -> Mention:
    """One filtered-stream (or search) object ``{"data": tweet, "includes": {"users": ...}}``.

    A quote counts as a response to the quoted post (``in_reply_to``) like a reply does:
    quote-dunking is how pile-ons spread on X, and the detector looks at both the same way.
    """
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise NormalizeError("x: payload has no 'data' object")
    tweet_id = _str(data, "id", "x")
    if not tweet_id.isdigit():
        raise NormalizeError(f"x: tweet id {tweet_id[:40]!r} is not numeric")
    author_id = _str(data, "author_id", f"x:{tweet_id}")
    users = payload.get("includes", {}).get("users", [])
    user: Mapping[str, Any] = next(
        (u for u in users if isinstance(u, Mapping) and u.get("id") == author_id), {}
    )
    username = user.get("username") if isinstance(user.get("username"), str) else None
    followers = _int(user.get("public_metrics", {}).get("followers_count"))
    parent = None
    refs = data.get("referenced_tweets") or []
    by_type = {r.get("type"): r.get("id") for r in refs if isinstance(r, Mapping)}
    for kind in ("replied_to", "quoted"):
        if isinstance(by_type.get(kind), str):
            parent = f"x:{by_type[kind]}"
            break
    metrics = data.get("public_metrics") or {}
    return _mention(
        id=f"x:{tweet_id}",
        source="x",
        created_at=parse_time(data.get("created_at"), f"x:{tweet_id}"),
        text=data.get("text") if isinstance(data.get("text"), str) else "",
        lang=data.get("lang") if isinstance(data.get("lang"), str) else None,
        author=Author(
            id=author_id, handle=f"@{username}" if username else author_id, followers=followers
        ),
        url=f"https://x.com/{username or 'i'}/status/{tweet_id}",
        in_reply_to=parent,
        metrics=EngagementMetrics(
            likes=_int(metrics.get("like_count")),
            reposts=_int(metrics.get("retweet_count")) + _int(metrics.get("quote_count")),
            replies=_int(metrics.get("reply_count")),
        ),
    )


# --- Mastodon -------------------------------------------------------------------------


class _TextOnly(HTMLParser):
    """Status content is HTML; paragraphs and line breaks become spaces, links their text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "p"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(value: str) -> str:
    parser = _TextOnly()
    parser.feed(value)
    parser.close()
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def _full_acct(account: Mapping[str, Any]) -> str:
    """``acct`` omits the domain for the connected server's own users; add it, so the same
    person has one handle whichever server we listen on."""
    acct = _str(account, "acct", "mastodon account")
    if "@" not in acct:
        host = urlsplit(str(account.get("url") or "")).hostname
        if host:
            acct = f"{acct}@{host}"
    return f"@{acct}"


def mastodon_mention(status: Mapping[str, Any], parent_uri: str | None = None) -> Mention:
    """A status from the streaming or REST API; a boost is the boosted status itself.

    ``parent_uri`` is the URI of the status this one replies to, resolved by the connector
    (the API only gives the per-server id, which is no identity across servers).
    """
    reblog = status.get("reblog")
    if isinstance(reblog, Mapping):
        status = reblog
        parent_uri = None
    uri = _str(status, "uri", "mastodon status")
    account = status.get("account")
    if not isinstance(account, Mapping):
        raise NormalizeError(f"masto:{uri}: missing account")
    content = status.get("content")
    text = html_to_text(content) if isinstance(content, str) else ""
    warning = status.get("spoiler_text")
    if isinstance(warning, str) and warning.strip():
        text = f"{html.unescape(warning.strip())} {text}".strip()
    return _mention(
        id=f"masto:{uri}",
        source="mastodon",
        created_at=parse_time(status.get("created_at"), f"masto:{uri}"),
        text=text,
        lang=status.get("language") if isinstance(status.get("language"), str) else None,
        author=Author(
            id=str(account.get("url") or account.get("uri") or _full_acct(account)),
            handle=_full_acct(account),
            followers=_int(account.get("followers_count")),
        ),
        url=status.get("url") if isinstance(status.get("url"), str) else uri,
        in_reply_to=f"masto:{parent_uri}" if parent_uri else None,
        metrics=EngagementMetrics(
            likes=_int(status.get("favourites_count")),
            reposts=_int(status.get("reblogs_count")),
            replies=_int(status.get("replies_count")),
        ),
    )


_MASTO_STATUS_URI = re.compile(r"^https://([^/]+)/users/([A-Za-z0-9_.-]+)/statuses/[^/]+$")


def masto_uri_author(uri: str) -> str | None:
    """``user@host`` from a Mastodon status URI (``https://host/users/user/statuses/id``);
    None for other ActivityPub software, whose URIs do not say who wrote them."""
    m = _MASTO_STATUS_URI.match(uri)
    return f"{m.group(2)}@{m.group(1).lower()}" if m else None


# --- Bluesky Jetstream ----------------------------------------------------------------


def at_uri_author(at_uri: str) -> str | None:
    """The DID an ``at://`` URI belongs to (its authority), or None."""
    if not at_uri.startswith("at://"):
        return None
    authority = at_uri[5:].split("/", 1)[0]
    return authority if authority.startswith("did:") else None


def bluesky_mention(event: Mapping[str, Any]) -> Mention | None:
    """A Jetstream event; only newly created posts become mentions."""
    if event.get("kind") != "commit":
        if "kind" not in event or "time_us" not in event:
            raise NormalizeError("bluesky: not a Jetstream event (no kind/time_us)")
        return None
    commit = event.get("commit")
    if not isinstance(commit, Mapping):
        raise NormalizeError("bluesky: commit event without 'commit'")
    if commit.get("collection") != BSKY_POST or commit.get("operation") != "create":
        return None
    did = _str(event, "did", "bluesky")
    rkey = _str(commit, "rkey", f"bluesky:{did}")
    record = commit.get("record")
    if not isinstance(record, Mapping):
        raise NormalizeError(f"bluesky:{did}/{rkey}: create without record")
    at_uri = f"at://{did}/{BSKY_POST}/{rkey}"
    # createdAt is set by the client and can be anything; a clearly broken one falls back to
    # the relay's receive time so the post still lands in the right window.
    try:
        created = parse_time(record.get("createdAt"), f"bsky:{at_uri}")
    except NormalizeError:
        time_us = event.get("time_us")
        if not isinstance(time_us, int):
            raise
        created = datetime.fromtimestamp(time_us / 1_000_000, tz=UTC)
    parent = None
    reply = record.get("reply")
    if isinstance(reply, Mapping) and isinstance(reply.get("parent"), Mapping):
        parent_uri = reply["parent"].get("uri")
        parent = f"bsky:{parent_uri}" if isinstance(parent_uri, str) else None
    embed = record.get("embed")
    if parent is None and isinstance(embed, Mapping):
        quoted = embed.get("record")
        if isinstance(quoted, Mapping) and isinstance(quoted.get("record"), Mapping):
            quoted = quoted["record"]  # recordWithMedia nests once more
        if isinstance(quoted, Mapping) and isinstance(quoted.get("uri"), str):
            parent = f"bsky:{quoted['uri']}"
    langs = record.get("langs")
    lang = langs[0] if isinstance(langs, Sequence) and langs and isinstance(langs[0], str) else None
    text = record.get("text")
    return _mention(
        id=f"bsky:{at_uri}",
        source="bluesky",
        created_at=created,
        text=text if isinstance(text, str) else "",
        lang=lang,
        author=Author(id=did, handle=did),
        url=f"https://bsky.app/profile/{did}/post/{rkey}",
        in_reply_to=parent,
    )


# --- RSS / Atom -----------------------------------------------------------------------

_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_[a-z]+|ocid|ref)$", re.IGNORECASE)


def canonical_url(url: str) -> str:
    """One spelling per article: lower-case host, no fragment, no tracking parameters,
    sorted query, no default port or trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NormalizeError(f"rss: not an http(s) link: {url[:80]!r}")
    host = parts.hostname.lower()
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(
        ("https" if parts.scheme == "https" else "http", host, path, urlencode(query), "")
    )


def rss_id(url: str) -> str:
    return "rss:" + hashlib.sha256(canonical_url(url).encode()).hexdigest()[:32]


def _feed_time(value: str) -> datetime | None:
    """RSS dates are RFC 822, Atom dates ISO 8601; an undated entry counts as fetched now."""
    try:
        return parse_time(value, "rss")
    except NormalizeError:
        pass
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def rss_mention(
    entry: Mapping[str, Any], *, feed_url: str, feed_title: str, fetched_at: datetime
) -> Mention:
    """One feed entry (as feedparser gives it). The feed is the author: news search feeds
    have no social graph, and the feed is what the watch list attaches to a target."""
    link = entry.get("link")
    if not isinstance(link, str) or not link:
        raise NormalizeError("rss: entry without link")
    title = html_to_text(str(entry.get("title") or ""))
    summary = html_to_text(str(entry.get("summary") or ""))
    text = f"{title} — {summary}" if title and summary and summary != title else title or summary
    created = fetched_at
    for key in ("published", "updated"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            parsed = _feed_time(value)
            if parsed is not None:
                created = parsed
                break
    lang = entry.get("language") if isinstance(entry.get("language"), str) else None
    return _mention(
        id=rss_id(link),
        source="rss",
        created_at=created,
        text=text,
        lang=lang,
        author=Author(id=feed_url[:200], handle=(feed_title or feed_url)[:200]),
        url=canonical_url(link),
    )
