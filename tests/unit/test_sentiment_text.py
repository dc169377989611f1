"""Text normalisation: the fast regex spellings must match exactly what the model was
trained with (the original patterns are the reference here)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_sentiment.domain import text as T

REFERENCE_URL = re.compile(r"(?:https?://|www\.)\S*|\bhttps?\b", re.IGNORECASE)
REFERENCE_REPEAT = re.compile(r"(\S)\1{2,}")
REFERENCE_TOKEN = re.compile(
    r"@user|#|<3|[:;=][-o'^]?[()\[\]dDpP/|*3]+(?!\w)|\w+(?:['’]\w+)?|[^\w\s]"
)
TOKEN_ALPHABET = "@user#<3:;=-o'^()[]dDpP/|*_ \t\n’aé1ß😡.!İ"

# letters of the patterns in both cases, separators, and characters with odd case folding
# (dotted capital I, dotless i, long s, Kelvin sign)
ALPHABET = "hHtTpPsSwW.:/ \n\taA@_1!xİıſ\u212a"


def reference_normalize(text: str) -> str:
    text = T.sanitize(text)
    text = REFERENCE_URL.sub(" http ", text)
    if "@" in text:
        text = T._MENTION.sub("@user", text)
    return REFERENCE_REPEAT.sub(r"\1\1", text.lower())


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40))
def test_fast_patterns_match_the_reference(text: str) -> None:
    assert T._URL.sub(" http ", text) == REFERENCE_URL.sub(" http ", text)
    assert T._REPEAT.sub(r"\1\1", text) == REFERENCE_REPEAT.sub(r"\1\1", text)
    assert T.normalize(text) == reference_normalize(text)


def test_examples() -> None:
    assert T.normalize("Seht HTTPS://t.co/x und www.klinik.de!!!!") == "seht  http  und  http "
    assert T.normalize("https") == " http "
    assert T.normalize("xhttps nein") == "xhttps nein"
    assert T.normalize("sooooo guuut") == "soo guut"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=TOKEN_ALPHABET, max_size=40))
def test_token_order_matches_the_reference(text: str) -> None:
    assert T._TOKEN.findall(text) == REFERENCE_TOKEN.findall(text)


def test_real_tweets_get_the_reference_tokens() -> None:
    import csv
    from pathlib import Path

    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "sentiment"
    files = sorted(data.glob("*.tsv")) if data.is_dir() else []
    assert files, f"no sentiment data under {data}: the equivalence needs real tweets"
    texts: list[str] = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as fh:
            texts += [row["text"] for row in csv.DictReader(fh, delimiter="\t")][:2_000]
    assert len(texts) > 5_000
    for text in texts:
        norm = T.normalize(text)
        assert T._TOKEN.findall(norm) == REFERENCE_TOKEN.findall(norm), text
