"""Text cleaning shared by training and every engine.

The labelled tweets come in three spellings of the same thing: UMSAB writes ``@user`` and
``http``, SB-10k keeps real handles and ``t.co`` links and puts spaces around punctuation,
and the UMSAB English file carries literal ``\\u2019`` escapes. A model trained on one
spelling and fed another loses accuracy for no reason, so all text goes through the same
normalisation at training and at inference time.

Odd input must never crash the pipeline: lone surrogates (invalid UTF-8 that reached Python
as ``surrogateescape``) are replaced, and very long texts are cut before any regex runs, which
bounds the work per text.
"""

from __future__ import annotations

import html
import re

MAX_CHARS = 2_000
"""Only the head of a long post is scored: its tone is set early and the cost stays bounded."""

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# Both spellings below match exactly what ``(?:https?://|www\.)\S*|\bhttps?\b`` and
# ``(\S)\1{2,}`` match, only faster: the leading look-ahead lets the regex engine skip to the
# next h or w instead of trying every alternative at every position (4.3 -> 1.9 us per
# tweet), and ``\1\1+`` avoids the counted repeat (3.9 -> 2.9 us). Training and inference
# must see the same text, so any other change here needs a retrained model.
_URL = re.compile(r"(?=[hw])(?:(?:https?://|www\.)\S*|\bhttps?\b)", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_REPEAT = re.compile(r"(\S)\1\1+")
# Word tokens first: no other alternative can match where a word character starts (they all
# begin with a non-word character), so the order changes no match, and the commonest token is
# tried first (5.4 -> 4.1 us per tweet; ``tests/unit/test_sentiment_text.py`` holds the
# original order as the reference).
_TOKEN = re.compile(r"\w+(?:['’]\w+)?|@user|#|<3|[:;=][-o'^]?[()\[\]dDpP/|*3]+(?!\w)|[^\w\s]")


def sanitize(text: str) -> str:
    """Make any ``str`` safe to encode and bounded in length."""
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _unescape_u(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    if 0xD800 <= code <= 0xDFFF:
        return " "
    return chr(code)


def _unescaped(text: str) -> str:
    text = sanitize(text)
    if "\\" in text:
        text = _ESCAPE.sub(_unescape_u, text).replace('\\"', '"').replace("\\n", " ")
    if "&" in text:
        text = html.unescape(text)
    return text


# lower() maps each of these to something of another length or by context (U+0130 to "i"
# and a combining dot, U+03A3 to a final or medial sigma): the compiled route, which lowers
# first, would not see the text the regexes below see.
_LOWER_FIRST_DIFFERS = ("\u0130", "\u03a3")


def lowered(text: str) -> str | None:
    """The input of the compiled canonicaliser (``engines/featc.c``): the text unescaped and
    lowered, or ``None`` where only :func:`canonical` gives the reference text."""
    text = _unescaped(text)
    for ch in _LOWER_FIRST_DIFFERS:
        if ch in text:
            return None
    return text.lower()


def normalize(text: str) -> str:
    """Canonical spelling: ``@user``, ``http``, lower case, runs of a character cut to two."""
    text = _unescaped(text)
    low = text.lower()
    replaced = False
    if "http" in low or "www." in low:  # the only ways a URL can start, in any case
        text = _URL.sub(" http ", text)
        replaced = True
    if "@" in text:
        text = _MENTION.sub("@user", text)
        replaced = True
    text = text.lower() if replaced else low
    return _REPEAT.sub(r"\1\1", text)


def tokens(text: str) -> list[str]:
    """Words, ``@user``, ``#``, emoticons and single punctuation or emoji characters.

    Emoticons stay whole (``:)``, ``;-(``, ``<3``) so the polarity lexicon can see them.
    """
    return _TOKEN.findall(normalize(text))


def canonical(text: str) -> str:
    """Tokens joined by single spaces, padded by one space each side (the n-gram input)."""
    return " " + " ".join(tokens(text)) + " "
