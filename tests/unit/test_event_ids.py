"""Derived event ids: deterministic, bounded, and never the reason a service stops.

A mention id comes from outside (Mastodon status URIs, Bluesky at:// URIs with long DIDs);
the event ids built from it once failed validation past 100 characters, in the listener
(``<mention id>|<target>``) and in sentiment (``<received id>|scored``), on every retry. An
alert's (``<target id>:<time>|<transition>|<level>``) did so for target ids past ~70.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from stormwatch_alerting.adapters import alert_event
from stormwatch_alerting.delivery.store import Store
from stormwatch_alerting.domain.types import Transition
from stormwatch_listener.domain.matching import received_events
from stormwatch_sentiment.domain.model import Sentiment
from stormwatch_sentiment.domain.topics import TopicTagger
from stormwatch_sentiment.engines import load_default
from stormwatch_sentiment.scoring import Scorer
from stormwatch_shared.codec import decode, encode
from stormwatch_shared.events import (
    MAX_EVENT_ID_CHARS,
    Author,
    Mention,
    MentionReceived,
    MentionScored,
    alert_event_ids,
    derived_event_id,
)
from stormwatch_shared.targets import Target, TargetMatcher

LONG_BSKY = (
    "bsky:at://did:web:" + "sehr-lange-domain." * 4 + "example/app.bsky.feed.post/3kgbz6ugmqu2x"
)
TARGET = "paula-schmidt-hebamme-station-3"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("x:1", "hospital"), "x:1|hospital"),
        (("a" * 90, "b" * 9), "a" * 90 + "|" + "b" * 9),  # exactly 100: kept as it is
        (("e" * 100, "scored"), None),
        ((LONG_BSKY, TARGET), None),
        (("m\ud800" * 60, "t"), None),  # a lone surrogate must not make hashing fail
    ],
)
def test_derived_ids_are_kept_when_short_and_digested_when_long(
    parts: tuple[str, ...], expected: str | None
) -> None:
    got = derived_event_id(*parts)
    assert got == derived_event_id(*parts)
    assert 1 <= len(got) <= MAX_EVENT_ID_CHARS
    if expected is not None:
        assert got == expected
    else:
        joined = "|".join(parts)
        assert got.startswith(joined[:40]) and got != joined[:MAX_EVENT_ID_CHARS]


def test_long_ids_that_share_their_head_stay_distinct() -> None:
    head = "masto:https://social.example/users/" + "u" * 80
    ids = {derived_event_id(f"{head}/statuses/{i}", "hospital") for i in range(1000)}
    assert len(ids) == 1000


def _mention(mid: str) -> Mention:
    return Mention(
        id=mid,
        source="bluesky",
        created_at=datetime(2026, 3, 11, 15, 4, 9, tzinfo=UTC),
        text="Unverschämt, wie man hier behandelt wird",
        lang="de",
        author=Author(id="did:plc:anna", handle="anna.bsky.social"),
    )


def test_the_listener_builds_events_for_a_long_mention_id() -> None:
    target = Target(id=TARGET, kind="ambassador", name="Paula", keywords=["behandelt"])
    events = received_events(_mention(LONG_BSKY), TargetMatcher([target]))
    assert [e.target_id for e in events] == [TARGET]
    again = received_events(_mention(LONG_BSKY), TargetMatcher([target]))
    assert events[0].event_id == again[0].event_id  # a re-published mention is the same event
    assert decode(encode(events[0]), MentionReceived) == events[0]


def _received(event_id: str, text: str = "Unverschämt") -> MentionReceived:
    m = _mention(f"bsky:{event_id[:20]}").model_copy(update={"text": text})
    return MentionReceived(
        event_id=event_id,
        occurred_at=m.created_at,
        target_id="hospital",
        target_ids=("hospital",),
        mention=m,
    )


def test_sentiment_scores_a_received_event_with_a_maximal_id() -> None:
    event = _received("e" * MAX_EVENT_ID_CHARS)
    (scored,) = Scorer(load_default(), TopicTagger.default()).score([event])
    assert scored.received_event_id == event.event_id
    assert len(scored.event_id) <= MAX_EVENT_ID_CHARS
    assert decode(encode(scored), MentionScored) == scored


class _Refusing:
    """A model that refuses one text, as an engine may reject what it cannot read."""

    model_id = "refusing"

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        if "boom" in texts:
            raise ValueError("engine refused the text")
        return [Sentiment("neutral", {"negative": 0.1, "neutral": 0.8, "positive": 0.1})] * len(
            texts
        )


def test_a_refused_mention_is_reported_and_the_rest_are_scored() -> None:
    events = [_received(f"id-{i}", "boom" if i == 2 else f"text {i}") for i in range(5)]
    scorer = Scorer(_Refusing(), TopicTagger.default())
    scored, refused = scorer.score_or_refuse(events)
    assert [s.received_event_id for s in scored] == ["id-0", "id-1", "id-3", "id-4"]
    assert refused == [(2, "cannot be scored: engine refused the text")]
    ok, none = scorer.score_or_refuse(events[:2])
    assert [s.received_event_id for s in ok] == ["id-0", "id-1"] and none == []


class _Broken:
    model_id = "broken"

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        raise RuntimeError("session lost")


def test_an_engine_failure_still_fails_the_batch_for_a_retry() -> None:
    with pytest.raises(RuntimeError):
        Scorer(_Broken(), TopicTagger.default()).score_or_refuse([_received("id-0")])


def test_an_alert_for_a_target_with_a_long_id_gets_bounded_event_ids(tmp_path: Path) -> None:
    tid = "t" * 100  # the longest id a watch list accepts
    aid = f"{tid}:1772409600"
    for kind, level, prev in (
        ("raised", "watch", None),
        ("escalated", "critical", "warning"),
        ("resolved", "critical", None),
    ):
        t = Transition(kind, tid, aid, level, 1772409600.0, previous_level=prev)  # type: ignore[arg-type]
        event = alert_event(t)
        assert len(event.event_id) <= MAX_EVENT_ID_CHARS
        assert event.event_id == alert_event(t).event_id
        assert event.event_id in alert_event_ids(aid)
    assert len(set(alert_event_ids(aid))) == 9
    assert alert_event(Transition("raised", "paula", "paula:1", "watch", 1.0)).event_id == (
        "paula:1|raised|watch"  # short ids read as before
    )
    # Erasing the target also forgets the digested ids it was deduplicated on.
    store = Store(tmp_path / "state.sqlite3")
    try:
        now = datetime(2026, 3, 11, tzinfo=UTC)
        store.save_event(aid, {"target_id": tid})
        for e in alert_event_ids(aid)[:3]:
            assert store.first_time_event(e, now)
        store.erase_target(tid)
        assert all(store.first_time_event(e, now) for e in alert_event_ids(aid)[:3])
    finally:
        store.close()


class _Rounding:
    """Probabilities summed over an engine's labels, with float rounding (or worse)."""

    model_id = "rounding"

    def __init__(self, negative: float) -> None:
        self.negative = negative

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        scores = {"negative": self.negative, "neutral": 0.0, "positive": 0.0}
        return [Sentiment("negative", scores)] * len(texts)


def test_rounding_past_one_is_clipped_and_nan_is_refused() -> None:
    (scored,) = Scorer(_Rounding(1.0000000000000002), TopicTagger.default()).score(
        [_received("id-0")]
    )
    assert scored.scores["negative"] == 1.0
    for bad in (float("nan"), float("inf"), 1.5):
        ok, refused = Scorer(_Rounding(bad), TopicTagger.default()).score_or_refuse(
            [_received("id-0")]
        )
        assert ok == [] and len(refused) == 1 and "scores.negative" in refused[0][1]


def test_the_service_route_with_a_batch_builder_refuses_the_same_mentions() -> None:
    from stormwatch_shared.codec import FastDecoder, FastEncoder, encode
    from stormwatch_shared.events import MentionReceived, MentionScored

    out = FastEncoder(MentionScored)
    structs = [FastDecoder(MentionReceived).struct(encode(_received(f"id-{i}"))) for i in range(4)]
    good = Scorer(_Rounding(0.5), TopicTagger.default())
    ok, none = good.score_or_refuse(structs, out.validate, out.validate_many)
    assert [s.received_event_id for s in ok] == [f"id-{i}" for i in range(4)] and none == []
    bad = Scorer(_Rounding(float("nan")), TopicTagger.default())
    ok, refused = bad.score_or_refuse(structs, out.validate, out.validate_many)
    assert ok == [] and [i for i, _ in refused] == [0, 1, 2, 3]
    assert all("scores" in reason for _, reason in refused)
