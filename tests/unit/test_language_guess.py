"""The language guesser's faster counting must pick exactly what the plain counting picked.

``reference`` is the earlier implementation (one pass over the words per language, one
character loop per text); the shipped one indexes the stop words and skips the script count
for text below U+0370. Ties between languages are broken by dict order, so a changed order
would change answers on real tweets: hence random words drawn from the stop lists.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_sentiment.domain import language as lang_mod
from stormwatch_sentiment.domain.language import guess_language


def _reference_script(text: str) -> str | None:
    counts: dict[str, int] = {}
    letters = 0
    for ch in text[:400]:
        if not ch.isalpha():
            continue
        letters += 1
        code = ord(ch)
        if code < 0x0370:
            continue
        for lo, hi, lang in lang_mod._SCRIPTS:
            if lo <= code <= hi:
                counts[lang] = counts.get(lang, 0) + 1
                break
    if not counts or letters == 0:
        return None
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    if "ja" in counts and lang == "zh":
        lang = "ja"
    return lang if n * 2 >= letters else None


def reference(text: str) -> str:
    if not isinstance(text, str) or not text:
        return lang_mod.UNKNOWN
    script = _reference_script(text)
    if script is not None:
        return script
    words = [
        w for w in lang_mod._WORD.findall(text[:2_000].lower()) if not w.startswith(("http", "www"))
    ][: lang_mod._MAX_WORDS]
    if not words:
        return lang_mod.UNKNOWN
    scores = {lang: sum(w in stop for w in words) for lang, stop in lang_mod._STOPWORDS.items()}
    if any(ch in lang_mod._GERMAN_LETTERS for w in words for ch in w):
        scores["de"] += 1
    best = max(scores, key=lambda lang: (scores[lang], lang in lang_mod.SUPPORTED))
    if scores[best] == 0:
        return lang_mod.UNKNOWN
    return best


_STOP = sorted({w for words in lang_mod._STOPWORDS.values() for w in words})
_PIECES = st.one_of(
    st.sampled_from(_STOP),
    st.sampled_from(
        [
            *("http://x.y", "www.z", "Straße", "😡", "привет", "مرحبا", "こんにちは", "漢字"),
            # links inside runs of letters, after digits or underscores, in capitals
            *("1http", "_www", "xhttp", "HTTPS://A.B", "wwwx", "ahttpb", "htt", "ww", "ÄHTTP"),
        ]
    ),
    st.text(max_size=6),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=80).map(" ".join))
def test_the_guess_equals_the_plain_counting(text: str) -> None:
    assert guess_language(text) == reference(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "die der the",
        "und and",
        "é" * 401 + "привет",
        "ß",
        "123 456",
        "ich bin da 😡",
        "😡 " * 150 + "привет мир",  # emoji first: the script count must still run
        "the und " * 40,  # past the word limit
        "i i i w w w nie",  # a tie broken by dict order
        "http https www wwwde die",
        # a link's run after a digit is no word: it must not count towards the word limit
        "1http " * 40 + "the " * 30 + "die " * 45,
    ],
)
def test_edge_cases_equal_the_plain_counting(text: str) -> None:
    assert guess_language(text) == reference(text)


def test_real_tweets_get_the_same_guess() -> None:
    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "sentiment"
    files = sorted(data.glob("*.tsv")) if data.is_dir() else []
    if not files:
        pytest.fail(f"no sentiment data under {data}: the equivalence needs real tweets")
    texts: list[str] = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as fh:
            texts += [row["text"] for row in csv.DictReader(fh, delimiter="\t")][:3_000]
    assert len(texts) > 5_000
    assert [guess_language(t) for t in texts] == [reference(t) for t in texts]
