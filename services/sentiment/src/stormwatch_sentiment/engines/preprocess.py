"""Per-model text cleaning for the transformer engines.

A fine-tuned model expects the text the way its training data looked. XLM-T
(cardiffnlp/twitter-xlm-roberta-base-sentiment) saw user mentions as ``@user`` and links as
``http``; oliverguhr/german-sentiment-bert saw lower-cased text without links, mentions or
special characters, with digits written out as German words. Feeding either the other's
spelling costs accuracy silently, so the model directory says which cleaning it wants
(``stormwatch.json``: ``{"preprocess": "twitter" | "german-sentiment-bert" | "none"}``),
falling back to a guess from the model name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from stormwatch_sentiment.domain.text import sanitize

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_NOT_TEXT = re.compile(r"[^a-zA-Z0-9äöüßÄÖÜ ]")
_DIGIT = re.compile(r"\d")
_GERMAN_DIGITS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")

Preprocessor = Callable[[str], str]


def twitter(text: str) -> str:
    text = sanitize(text if isinstance(text, str) else "")
    return _MENTION.sub("@user", _URL.sub("http", text))


def german_sentiment_bert(text: str) -> str:
    text = sanitize(text if isinstance(text, str) else "").replace("\n", " ")
    text = _MENTION.sub(" ", _URL.sub(" ", text))
    text = _DIGIT.sub(lambda m: " " + _GERMAN_DIGITS[int(m.group())] + " ", text)
    text = _NOT_TEXT.sub(" ", text)
    return " ".join(text.split()).lower()


def plain(text: str) -> str:
    return sanitize(text if isinstance(text, str) else "")


PREPROCESSORS: dict[str, Preprocessor] = {
    "twitter": twitter,
    "german-sentiment-bert": german_sentiment_bert,
    "none": plain,
}


def preprocess_name_for_model_id(model_id: str) -> str:
    """Which cleaning a hub model expects, from its id."""
    lowered = model_id.lower()
    if "german-sentiment-bert" in lowered:
        return "german-sentiment-bert"
    if "twitter" in lowered or "xlm-t" in lowered or "cardiffnlp" in lowered:
        return "twitter"
    return "none"


def preprocessor_for(model_dir: Path) -> Preprocessor:
    meta = model_dir / "stormwatch.json"
    name: str | None = None
    if meta.is_file():
        value = json.loads(meta.read_text(encoding="utf-8")).get("preprocess")
        name = value if isinstance(value, str) else None
    if name is None:
        config = model_dir / "config.json"
        source = ""
        if config.is_file():
            source = str(json.loads(config.read_text(encoding="utf-8")).get("_name_or_path", ""))
        name = preprocess_name_for_model_id(source or model_dir.name)
    if name not in PREPROCESSORS:
        raise ValueError(f"unknown preprocess {name!r}; choose one of {sorted(PREPROCESSORS)}")
    return PREPROCESSORS[name]
