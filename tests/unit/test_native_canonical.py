"""The compiled canonicaliser (``sw_canonical`` in ``engines/featc.c``) against
``text.canonical``, the reference that training used.

The C route lowers first and rewrites URLs and mentions afterwards; ``text.normalize`` does
it the other way round. That is only the same text if ``lower()`` keeps every code point's
class and the URL letters' case-insensitive matches, apart from the code points that
``text.lowered`` sends to the Python route: the first tests check that premise over every
code point, the others compare both routes on real tweets and on random texts built from
the characters the regexes care about.
"""

from __future__ import annotations

import functools
import random
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_sentiment.domain.text import _LOWER_FIRST_DIFFERS, canonical, lowered
from stormwatch_sentiment.engines import load_default, native
from stormwatch_sentiment.engines.default import HashedLinearModel

from tests.unit.test_native_features import _require_build, _tweets


@functools.cache
def _every() -> list[str]:
    """Every code point but the surrogates; built on first use, not when the suite is
    collected (a million strings)."""
    return [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


# What the regexes of text.py look at, and the code points where case and classes are odd.
ALPHABET = [
    *"httpsHTTPSwW:/.@#<3;=-o'^()[]dDpP|*’_ aäßé\\&\t\n0x",
    "\u0130", "\u03a3", "\u017f", "\u212a", "\u0131", "\u0307", "\u2028", "\u00a0", "😀",
    "σ", "ς", "İ", "Σ", "http://", "https://", "www.", "@user", ":-)", ";(", "&amp;",
    "\\u00e4", "\\n", "aaa", "!!!", "HTTP", "Www.",
]  # fmt: skip


def test_lower_keeps_each_code_points_class_and_length() -> None:
    word, space = re.compile(r"\w"), re.compile(r"\s")
    odd = []
    for ch in _every():
        if ch in _LOWER_FIRST_DIFFERS:
            continue
        low = ch.lower()
        if (
            len(low) != 1
            or bool(word.match(ch)) != bool(word.match(low))
            or bool(space.match(ch)) != bool(space.match(low))
        ):
            odd.append(f"U+{ord(ch):04X}")
    assert odd == [], f"lower() changes these, text.lowered must refuse them: {odd[:20]}"


@pytest.mark.parametrize("letter", list("htpsw:/."))
def test_the_url_letters_match_case_insensitively_exactly_where_their_lower_case_does(
    letter: str,
) -> None:
    pattern = re.compile(re.escape(letter), re.IGNORECASE)
    # the C route reads U+017F (long s) as "s", as the case-insensitive regex does
    same = {letter, "\u017f"} if letter == "s" else {letter}
    differ = [
        f"U+{ord(ch):04X}"
        for ch in _every()
        if ch not in _LOWER_FIRST_DIFFERS and bool(pattern.match(ch)) != (ch.lower() in same)
    ]
    assert differ == []


def test_the_character_classes_are_the_regex_engines() -> None:
    _require_build()
    classes = native.char_classes()
    rng = random.Random(3)
    for c in [*range(0, 0x3000), *rng.sample(range(0xE000, 0x110000), 20_000)]:
        ch = chr(c)
        expected = (1 if re.match(r"\w", ch) else 0) | (2 if re.match(r"\s", ch) else 0)
        assert classes[c] == expected, f"U+{c:04X}"


def _assert_same(texts: list[str]) -> None:
    fast = native.canonical_texts(texts)
    assert fast is not None, "the compiled route refused input"
    slow = [canonical(t) for t in texts]
    differ = [i for i, (a, b) in enumerate(zip(fast, slow, strict=True)) if a != b]
    assert not differ, f"{len(differ)} differ, e.g. {texts[differ[0]]!r}: {fast[differ[0]]!r}"


def test_real_tweets_get_the_reference_canonical_text() -> None:
    _require_build()
    _assert_same(_tweets())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "HTTPS://X.org/a?b=1 und www.Klinik.de!",
        "httpſ://x ſ https http https:/ xhttp http_ httpſ",
        "@Paula_K @ @@x mail@example.org @İx",
        "Soooo schlecht!!!!! ?!?!?! ...... aa",
        "don't can’t rock'n'roll it''s 'quoted'",
        ":) :-) ;( =D :Dx :-Dx :o) :'( :^P :(( :3 :/ :|x <3 <4 # #tag",
        "ΑΣhttp://x ΣΟΦΙΑ İstanbul",  # the Python route, inside a batch of the C route
        "\\u00e4rger \\n &amp; &lt;3 &#128545;",
        "a" * 2_500,
        "😡😡😡 😀😀 \u2028 \u00a0x\u3000y",
    ],
)
def test_edge_cases_get_the_reference_canonical_text(text: str) -> None:
    _require_build()
    _assert_same([text, "gut", text])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join), max_size=8))
def test_random_texts_get_the_reference_canonical_text(texts: list[str]) -> None:
    _assert_same(texts)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=6))
def test_arbitrary_unicode_gets_the_reference_canonical_text(texts: list[str]) -> None:
    _assert_same(texts)


def test_the_model_sums_from_raw_texts_equal_those_from_canonical_ones() -> None:
    _require_build()
    model = load_default()
    assert isinstance(model, HashedLinearModel)
    texts = [*_tweets()[:3_000], "ΑΣhttp://x", "", "@İx :-)"]
    fast = native.text_sums(texts, model.spec, model.lexicon, model.weights)
    assert fast is not None
    slow = model.numpy_sums([canonical(t) for t in texts])
    assert np.array_equal(fast.view(np.uint32), slow.view(np.uint32))


def test_text_sums_takes_the_compiled_route_in_logits() -> None:
    """``logits`` must use the route this file proves; a silent fall back to the regexes
    would still give right numbers, only slowly, and no other test would notice."""
    _require_build()
    model = load_default()
    assert isinstance(model, HashedLinearModel)
    calls: list[int] = []
    real = native.text_sums

    def spy(*args: object, **kwargs: object) -> object:
        out = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(0 if out is None else 1)
        return out

    native.text_sums = spy  # type: ignore[assignment]
    try:
        model.logits(["gut", "schlecht"])
    finally:
        native.text_sums = real
    assert calls == [1]


def test_lowered_refuses_only_the_code_points_whose_lower_case_differs() -> None:
    assert lowered("Ärger HTTP") == "ärger http"
    assert lowered("İstanbul") is None
    assert lowered("ΣΟΦΙΑ") is None
    assert lowered("\\u0130") is None  # refused after the escape is read, as normalize reads it
