"""The literal pre-check of the topic tagger must never change a tag, only skip work."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_sentiment.domain.topics import TOPICS, TopicTagger, _lower_pattern, _needles


@pytest.mark.parametrize(
    ("pattern", "needles"),
    [
        ("hygien", {"hygien"}),
        (r"\bmrsa\b", {"mrsa"}),
        (r"\bmou?ld\b", {"mould", "mold"}),  # an optional letter: the run both ways
        ("ab?c?d", {"abcd", "abd", "acd", "ad"}),
        ("a?bc", {"abc", "bc"}),
        ("a?", None),  # one spelling is empty: no needle
        ("x?y?z?w?v", {"v"}),  # past eight spellings the run ends
        ("(mo)u?ld", {"mo"}),  # a group ends the run: "mo" against "uld"/"ld", the first wins
        (r"falsch\w*\s+(?:diagnos|operiert)", {"diagnos", "operiert"}),  # longest shortest
        (r"(?:yelled|shouted|screamed)\s+at", {"yelled", "shouted", "screamed"}),
        (r"\bop[- ]?fehler", {"fehler"}),
        (r"(?:ab)+c", {"ab"}),
        ("a|b", None),  # the parser turns it into a class
        ("(?:abc|d?)x", {"x"}),  # a branch that can be empty gives nothing
        (r"\d{3}", None),
        ("(?i)gestorben", None),  # case-folding matches more than the lower-cased text shows
        ("tod(?i:es)", {"tod"}),
    ],
)
def test_needles(pattern: str, needles: set[str] | None) -> None:
    assert _needles(pattern) == (frozenset(needles) if needles is not None else None)


WORDS = [w for pats in TOPICS.values() for p in pats for w in re.findall(r"[a-zäöüß]{3,}", p)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*WORDS, "Klinik", "super", "NICHT", " ", "-", "!"]), max_size=8))
def test_tags_equal_plain_regex_search(parts: list[str]) -> None:
    text = " ".join(parts)
    tagger = TopicTagger.default()
    expected = tuple(
        topic
        for topic, pats in TOPICS.items()
        if any(re.search(p, text, re.IGNORECASE) for p in pats)
    )
    assert tagger.tag(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*WORDS, "mould", "mold", "ld", "mo", " ", "x"]), max_size=8))
def test_every_match_contains_a_needle(parts: list[str]) -> None:
    text = "".join(parts)
    for pats in TOPICS.values():
        for p in pats:
            lowered = _lower_pattern(p)
            needles = _needles(lowered)
            if needles is not None and re.search(lowered, text):
                assert any(n in text for n in needles), (p, text)


def test_patterns_without_needles_are_searched_on_every_text() -> None:
    tagger = TopicTagger.default().extended({"phone": [r"\d{3}[- ]\d{4}"], "short": ["a|b"]})
    assert tagger.tag("Ruf 555-1234 zurück") == ("phone",)
    assert tagger.tag("Bad hygiene") == ("hygiene", "short")
    assert tagger.tag("zzz") == ()


def test_case_insensitive_patterns_are_not_prefiltered_by_lower_case_literals() -> None:
    # "ſ" (long s) is "s" to re.IGNORECASE but stays "ſ" when lower-cased
    tagger = TopicTagger.default().extended(
        {"custom": ["(?i)gestorben"], "group": ["x(?i:gestorben)"]}
    )
    assert tagger.tag("geſtorben") == ("custom",)
    assert tagger.tag("xgeſtorben") == ("custom", "group")
