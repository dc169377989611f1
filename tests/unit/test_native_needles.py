"""The compiled needle pre-check (``sw_needles_*`` in ``engines/featc.c``) of the topic
tagger: it may only say which texts to skip, so it must find a needle exactly where
pyahocorasick's scan finds one, and ``tag_many`` must equal ``tag`` text by text."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_sentiment.domain.topics import TopicTagger
from stormwatch_sentiment.engines import native
from stormwatch_sentiment.scoring import Scorer

from tests.unit.test_native_features import _require_build, _tweets

TAGGER = TopicTagger.default()
NEEDLES = list(TAGGER.needles)
# needle letters, the lower-cased code points that are odd (long s, dotted i), emoji, and
# characters beyond the Latin-1 table the C side looks up separately
ODD = [" ", ".", "ä", "ß", "ſ", "i\u0307", "🙂", "Ω", "\u2028", "x", "s"]


def _scanned(text: str) -> int:
    """Whether pyahocorasick's scan (the tagger's exact route) finds any needle."""
    return int(any(True for _ in TAGGER._automaton.iter(text)))


def _check() -> native.NeedleCheck:
    _require_build()
    check = native.needle_check(NEEDLES)
    assert check is not None
    return check


def _pieces(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 6)):
        r = rng.random()
        needle = rng.choice(NEEDLES)
        if r < 0.3:  # a needle cut short or its tail: near misses
            k = rng.randint(0, len(needle))
            parts.append(needle[:k] if rng.random() < 0.5 else needle[k:])
        elif r < 0.45:
            parts.append(needle)
        else:
            parts.append("".join(rng.choice(ODD) for _ in range(rng.randint(0, 5))))
    return "".join(parts)


def test_real_tweets_are_found_where_the_scan_finds_a_needle() -> None:
    check = _check()
    lows = [t[:10_000].lower() for t in _tweets()]
    found = check(lows)
    assert found == [_scanned(t) for t in lows]
    assert 0 < sum(found) < len(lows)  # both answers occur: the comparison means something


def test_random_near_misses_agree_with_the_scan() -> None:
    check = _check()
    rng = random.Random(11)
    texts = [_pieces(rng) for _ in range(20_000)]
    assert check(texts) == [_scanned(t) for t in texts]


@pytest.mark.parametrize(
    ("needles", "text", "held"),
    [
        (["abc"], "xxabcxx", 1),
        (["abc"], "ab abc"[:5], 0),
        (["abcd", "bc"], "abc", 1),  # found through a failure link
        (["abcd", "cx"], "abcx", 1),  # "abc" fails to "c", which goes on to "cx"
        (["ſ"], "aſb", 1),  # beyond the Latin-1 table
        (["🙂a"], "🙂🙂a", 1),
        (["ää"], "ä ä", 0),
        (["a"], "", 0),
    ],
)
def test_automaton_cases(needles: list[str], text: str, held: int) -> None:
    _require_build()
    check = native.needle_check(needles)
    assert check is not None
    assert check([text]) == [held]


def test_no_needles_and_unencodable_texts_take_the_exact_route() -> None:
    _require_build()
    assert native.needle_check([]) is None
    check = _check()
    assert check(["ok", "\ud800"]) is None  # a lone surrogate has no UTF-32
    texts = ["hygiene \ud800 mängel", "nothing here"]
    assert TAGGER.tag_many(texts, check) == [TAGGER.tag(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(NEEDLES + ODD), st.text(max_size=6)), max_size=8))
def test_tag_many_equals_tag(parts: list[str]) -> None:
    texts = ["".join(parts), " ".join(parts).upper(), "", *parts]
    check = native.needle_check(NEEDLES) if native.NATIVE else None
    expected = [TAGGER.tag(t) for t in texts]
    assert TAGGER.tag_many(texts, check) == expected
    assert TAGGER.tag_many(texts) == expected


def test_tag_many_keeps_patterns_without_needles() -> None:
    """A pattern without needles ("bare") is searched on every text, pre-check or not."""
    tagger = TAGGER.extended({"zahlen": [r"\d{3}"], "hygiene": ["schimmel"]})
    check = native.needle_check(tagger.needles) if native.NATIVE else None
    texts = ["Zimmer 123", "Schimmel im Bad", "nichts", 123]  # type: ignore[list-item]
    assert tagger.tag_many(texts, check) == [("zahlen",), ("hygiene",), (), ()]


def test_scorer_tags_each_event_as_the_tagger_does() -> None:
    """The scorer tags each distinct mention once, through the pre-check, and every event
    of the batch carries its text's topics (two targets of one mention included)."""
    _require_build()
    from stormwatch_sentiment.engines import load_default

    from tests.unit.test_event_ids import _received

    texts = ["Hygienemängel und Schimmel", "Danke an das Team!", "MRSA auf Station 3"]
    events = [_received(f"id-{i}", t) for i, t in enumerate(texts)]
    events.append(events[0].model_copy(update={"target_id": "other", "event_id": "id-x"}))
    scorer = Scorer(load_default(), TAGGER)
    assert scorer._holds_needle is not None
    topics = [s.topics for s in scorer.score(events)]
    assert topics == [TAGGER.tag(e.mention.text) for e in events]
    assert topics[0] and topics[2] and not topics[1]
