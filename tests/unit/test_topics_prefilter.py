"""The literal pre-check of the topic tagger must never change a tag, only skip work."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_sentiment.domain.topics import TOPICS, TopicTagger, _literal_core


@pytest.mark.parametrize(
    ("pattern", "core"),
    [
        ("hygien", "hygien"),
        (r"\bmrsa\b", "mrsa"),
        (r"\bmou?ld\b", None),
        (r"falsch\w*\s+(?:diagnos|operiert)", "falsch"),
        (r"\bop[- ]?fehler", "fehler"),
        ("a|b", None),
        ("ab", None),
    ],
)
def test_literal_core(pattern: str, core: str | None) -> None:
    assert _literal_core(pattern) == core


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
