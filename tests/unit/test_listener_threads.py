"""Replies inherit their parent's targets (``ThreadTargets``), bounded in age and count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from stormwatch_listener.domain.matching import received_events
from stormwatch_listener.domain.threads import DAY_S, ThreadTargets
from stormwatch_shared.events import Author, Mention
from stormwatch_shared.targets import Target, TargetMatcher

T0 = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
MATCHER = TargetMatcher(
    [
        Target(id="hospital", name="Klinikum Nordstadt", keywords=("Klinikum Nordstadt",)),
        Target(id="paula", kind="ambassador", handles=("@pflege_paula",)),
    ]
)


def post(mid: str, text: str, *, reply_to: str | None = None, minutes: float = 0) -> Mention:
    return Mention(
        id=mid,
        source="rss" if mid.startswith("rss") else "x",
        created_at=T0 + timedelta(minutes=minutes),
        text=text,
        author=Author(id=f"u-{mid}", handle=f"@{mid}"),
        in_reply_to=reply_to,
    )


def targets(posts: list[Mention], threads: ThreadTargets | None) -> list[list[str]]:
    return [[e.target_id for e in received_events(p, MATCHER, threads=threads)] for p in posts]


NEWS = post("rss:1", "Keim-Ausbruch im Klinikum Nordstadt")


@pytest.mark.parametrize(
    ("posts", "expected"),
    [
        # a reply that does not name the hospital still concerns it
        ([NEWS, post("x:2", "Wer übernimmt Verantwortung?", reply_to="rss:1")], [["hospital"]] * 2),
        # and so does a reply to that reply
        (
            [
                NEWS,
                post("x:2", "Skandal", reply_to="rss:1"),
                post("x:3", "Genau so!", reply_to="x:2"),
            ],
            [["hospital"]] * 3,
        ),
        # a reply to a post that concerned nobody concerns nobody
        (
            [post("x:1", "schönes Wetter"), post("x:2", "ja", reply_to="x:1")],
            [[], []],
        ),
        # a reply to an unseen post: only its own text counts
        ([post("x:2", "@pflege_paula nein", reply_to="x:99")], [["paula"]]),
        # own and inherited targets together, in watch-list order, each once
        (
            [
                post("x:1", "@pflege_paula danke"),
                post("x:2", "Klinikum Nordstadt, ernsthaft?", reply_to="x:1"),
            ],
            [["paula"], ["hospital", "paula"]],
        ),
        # three days later the conversation is over
        (
            [NEWS, post("x:2", "Skandal", reply_to="rss:1", minutes=3 * 24 * 60 + 1)],
            [["hospital"], []],
        ),
    ],
)
def test_replies_inherit_their_parents_targets(
    posts: list[Mention], expected: list[list[str]]
) -> None:
    assert targets(posts, ThreadTargets()) == expected


def test_without_thread_memory_only_the_text_counts() -> None:
    reply = post("x:2", "Wer übernimmt Verantwortung?", reply_to="rss:1")
    assert targets([NEWS, reply], None) == [["hospital"], []]


def test_memory_is_bounded_oldest_first() -> None:
    threads = ThreadTargets(capacity=2)
    for i in range(3):
        threads.resolve(f"x:{i}", None, 0.0, ["hospital"], ["hospital"])
    assert len(threads) == 2
    assert threads.resolve("r0", "x:0", 1.0, [], ["hospital"]) == []
    assert threads.resolve("r2", "x:2", 1.0, [], ["hospital"]) == ["hospital"]


def test_a_reply_older_than_its_parent_or_too_late_inherits_nothing() -> None:
    threads = ThreadTargets(max_age_s=DAY_S)
    threads.resolve("p", None, 1000.0, ["hospital"], ["hospital"])
    assert threads.resolve("a", "p", 999.0, [], ["hospital"]) == []
    assert threads.resolve("b", "p", 1000.0 + DAY_S + 1, [], ["hospital"]) == []
    assert threads.resolve("c", "p", 1000.0 + DAY_S, [], ["hospital"]) == ["hospital"]


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ThreadTargets(capacity=-1)
