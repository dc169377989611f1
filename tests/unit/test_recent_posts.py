"""The alerting service's bounded memory of post texts (quoted in alert emails)."""

from __future__ import annotations

from datetime import UTC, datetime

from stormwatch_alerting.adapters import RecentPosts
from stormwatch_shared.events import Author, Mention, MentionScored

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _scored(n: int, handle: str = "@crowd") -> MentionScored:
    return MentionScored(
        occurred_at=T0,
        target_id="hospital",
        target_ids=("hospital",),
        mention=Mention(
            id=f"x:{n}",
            source="x",
            created_at=T0,
            text=f"Beitrag {n} " + "x" * 400,
            author=Author(id=f"u{n}", handle=handle),
        ),
        label="negative",
        scores={"negative": 0.9, "neutral": 0.1, "positive": 0.0},
        language="de",
        model_id="test",
        received_event_id=f"r{n}",
    )


def test_keeps_the_newest_posts_up_to_capacity_and_cuts_texts() -> None:
    posts = RecentPosts(capacity=50, max_chars=20)
    for n in range(500):
        posts.add(_scored(n))
        posts.add(_scored(n))  # a repeat neither evicts nor moves anything
    kept = posts._posts
    assert list(kept) == [f"x:{n}" for n in range(450, 500)]
    assert kept["x:499"] == ("Beitrag 499 xxxxxxxx", "@crowd")


def test_forget_by_author_and_by_id() -> None:
    posts = RecentPosts(capacity=10)
    for n in range(6):
        posts.add(_scored(n, "@erika" if n % 2 else "@crowd"))
    assert posts.forget(author="@erika") == 3
    assert posts.forget(mention_id="x:0") == 1
    assert list(posts._posts) == ["x:2", "x:4"]
