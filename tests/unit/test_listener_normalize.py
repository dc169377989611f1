"""Pure normalizers: each network's payload -> Mention, canonical ids, malformed -> error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from stormwatch_listener.domain.normalize import (
    NormalizeError,
    at_uri_author,
    bluesky_mention,
    canonical_url,
    masto_uri_author,
    mastodon_mention,
    rss_id,
    rss_mention,
    x_mention,
)

pytestmark = pytest.mark.sources

FETCHED = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


def x_payload(**data: Any) -> dict[str, Any]:
    base = {
        "id": "1500",
        "text": "Hallo @KlinikumNord",
        "author_id": "77",
        "created_at": "2026-03-11T10:00:00.000Z",
        "lang": "de",
        "public_metrics": {"like_count": 3, "retweet_count": 1, "quote_count": 2, "reply_count": 4},
    }
    return {
        "data": {**base, **data},
        "includes": {
            "users": [{"id": "77", "username": "anna", "public_metrics": {"followers_count": 321}}]
        },
    }


@pytest.mark.parametrize(
    ("refs", "parent"),
    [
        (None, None),
        ([{"type": "replied_to", "id": "1400"}], "x:1400"),
        ([{"type": "quoted", "id": "1300"}], "x:1300"),
        ([{"type": "quoted", "id": "1300"}, {"type": "replied_to", "id": "1400"}], "x:1400"),
        ([{"type": "retweeted", "id": "1200"}], None),
    ],
)
def test_x_reply_and_quote_relations(refs: Any, parent: str | None) -> None:
    extra = {"referenced_tweets": refs} if refs else {}
    m = x_mention(x_payload(**extra))
    assert m.in_reply_to == parent
    assert (m.id, m.source, m.author.handle, m.author.followers) == ("x:1500", "x", "@anna", 321)
    assert (m.metrics.likes, m.metrics.reposts, m.metrics.replies) == (3, 3, 4)
    assert m.created_at == datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
    assert m.url == "https://x.com/anna/status/1500"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({}, "no 'data'"),
        ({"data": {"id": "abc", "author_id": "1"}}, "not numeric"),
        ({"data": {"id": "1", "created_at": "2026-03-11T10:00:00Z"}}, "author_id"),
        ({"data": {"id": "1", "author_id": "2", "created_at": "gestern"}}, "bad timestamp"),
    ],
)
def test_x_malformed(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(NormalizeError, match=reason):
        x_mention(payload)


def masto_status(**extra: Any) -> dict[str, Any]:
    return {
        "id": "111",
        "uri": "https://a.example/users/bob/statuses/9",
        "url": "https://a.example/@bob/9",
        "created_at": "2026-03-11T10:00:00Z",
        "content": "<p>Lange Wartezeit im <a href='x'>#KlinikumNordstadt</a></p>"
        "<p>zweiter&amp;Absatz</p>",
        "language": "de",
        "spoiler_text": "",
        "account": {"acct": "bob", "url": "https://a.example/@bob", "followers_count": 5},
        "favourites_count": 1,
        "reblogs_count": 2,
        "replies_count": 3,
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "expected_id", "text", "handle"),
    [
        (
            masto_status(),
            "masto:https://a.example/users/bob/statuses/9",
            "Lange Wartezeit im #KlinikumNordstadt zweiter&Absatz",
            "@bob@a.example",
        ),
        (
            masto_status(spoiler_text="CW Klinik"),
            "masto:https://a.example/users/bob/statuses/9",
            "CW Klinik Lange Wartezeit im #KlinikumNordstadt zweiter&Absatz",
            "@bob@a.example",
        ),
        # A boost is the boosted status: same URI, so it deduplicates with the original.
        (
            {
                "id": "999",
                "uri": "https://b.example/users/eve/statuses/1/activity",
                "reblog": masto_status(),
                "account": {"acct": "eve@b.example"},
            },
            "masto:https://a.example/users/bob/statuses/9",
            "Lange Wartezeit im #KlinikumNordstadt zweiter&Absatz",
            "@bob@a.example",
        ),
    ],
)
def test_mastodon_uri_identity_and_text(
    status: dict[str, Any], expected_id: str, text: str, handle: str
) -> None:
    m = mastodon_mention(status, parent_uri="https://c.example/users/x/statuses/1")
    assert (m.id, m.text, m.author.handle) == (expected_id, text, handle)
    if "reblog" not in status:
        assert m.in_reply_to == "masto:https://c.example/users/x/statuses/1"


def test_mastodon_malformed() -> None:
    with pytest.raises(NormalizeError, match="uri"):
        mastodon_mention({"id": "1", "content": "x"})
    with pytest.raises(NormalizeError, match="account"):
        mastodon_mention(
            {"uri": "https://a/users/b/statuses/1", "created_at": "2026-03-11T10:00:00Z"}
        )


def jet(**record: Any) -> dict[str, Any]:
    rec = {
        "$type": "app.bsky.feed.post",
        "text": "Klinikum Nordstadt",
        "createdAt": "2026-03-11T10:00:00.000Z",
        "langs": ["de"],
        **record,
    }
    return {
        "did": "did:plc:abc",
        "time_us": 1_773_223_200_000_000,
        "kind": "commit",
        "commit": {
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "3k",
            "record": rec,
        },
    }


@pytest.mark.parametrize(
    ("record", "parent"),
    [
        ({}, None),
        (
            {
                "reply": {
                    "parent": {"uri": "at://did:plc:p/app.bsky.feed.post/1"},
                    "root": {"uri": "at://did:plc:r/app.bsky.feed.post/0"},
                }
            },
            "bsky:at://did:plc:p/app.bsky.feed.post/1",
        ),
        (
            {
                "embed": {
                    "$type": "app.bsky.embed.record",
                    "record": {"uri": "at://did:plc:q/app.bsky.feed.post/2"},
                }
            },
            "bsky:at://did:plc:q/app.bsky.feed.post/2",
        ),
        (
            {
                "embed": {
                    "$type": "app.bsky.embed.recordWithMedia",
                    "record": {"record": {"uri": "at://did:plc:q/app.bsky.feed.post/3"}},
                }
            },
            "bsky:at://did:plc:q/app.bsky.feed.post/3",
        ),
    ],
)
def test_bluesky_post_ids_and_relations(record: dict[str, Any], parent: str | None) -> None:
    m = bluesky_mention(jet(**record))
    assert m is not None
    assert m.id == "bsky:at://did:plc:abc/app.bsky.feed.post/3k"
    assert (m.in_reply_to, m.lang, m.author.id) == (parent, "de", "did:plc:abc")


def test_bluesky_non_posts_and_bad_created_at() -> None:
    delete = jet()
    delete["commit"]["operation"] = "delete"
    assert bluesky_mention(delete) is None
    assert bluesky_mention({"kind": "identity", "time_us": 1, "did": "did:plc:x"}) is None
    with pytest.raises(NormalizeError):
        bluesky_mention({"hello": "world"})
    m = bluesky_mention(jet(createdAt="not a date"))
    assert m is not None and m.created_at == datetime(2026, 3, 11, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://News.Example/a/?utm_source=x&b=2&a=1#frag", "https://news.example/a?a=1&b=2"),
        ("http://news.example:80/a", "http://news.example/a"),
        ("https://news.example/", "https://news.example/"),
    ],
)
def test_canonical_url(a: str, b: str) -> None:
    assert canonical_url(a) == b
    assert rss_id(a) == rss_id(b)


def test_rss_entry_dates_and_feed_author() -> None:
    entry = {
        "link": "https://n.example/1?utm_medium=rss",
        "title": "Klinikum Nordstadt",
        "summary": "<b>Streik</b> angekündigt",
        "published": "Tue, 10 Mar 2026 08:00:00 +0100",
    }
    m = rss_mention(
        entry, feed_url="https://feeds.example/q", feed_title="News", fetched_at=FETCHED
    )
    assert m.created_at == datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    assert m.text == "Klinikum Nordstadt — Streik angekündigt"
    assert (m.author.id, m.author.handle, m.url) == (
        "https://feeds.example/q",
        "News",
        "https://n.example/1",
    )
    undated = rss_mention(
        {"link": "https://n.example/2", "title": "t"},
        feed_url="f",
        feed_title="",
        fetched_at=FETCHED,
    )
    assert undated.created_at == FETCHED
    with pytest.raises(NormalizeError, match="link"):
        rss_mention({"title": "x"}, feed_url="f", feed_title="", fetched_at=FETCHED)
    with pytest.raises(NormalizeError, match="http"):
        rss_mention(
            {"link": "javascript:alert(1)"}, feed_url="f", feed_title="", fetched_at=FETCHED
        )


@pytest.mark.parametrize(
    ("uri", "author"),
    [
        ("https://Pflege.Social/users/paula/statuses/1", "paula@pflege.social"),
        ("https://pleroma.example/objects/123", None),
    ],
)
def test_masto_uri_author(uri: str, author: str | None) -> None:
    assert masto_uri_author(uri) == author


def test_at_uri_author() -> None:
    assert at_uri_author("at://did:plc:abc/app.bsky.feed.post/1") == "did:plc:abc"
    assert at_uri_author("at://alice.bsky.social/app.bsky.feed.post/1") is None
