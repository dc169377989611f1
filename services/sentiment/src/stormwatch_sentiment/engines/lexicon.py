"""Polarity-lexicon features for the default model.

A few thousand labelled tweets cannot teach the polarity of every word a crisis brings
("katastrophal", "fahrlässig", "appalling"); a polarity lexicon can. Each token found in the
lexicon adds one of a few shared features (polarity bin, flipped after a negation), so the
regression learns how much to trust the lexicon, and words never seen in training still
count. The lexicon travels inside the model file, so inference needs nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

_CONTRACTIONS = (
    "cant",
    "dont",
    "doesnt",
    "didnt",
    "isnt",
    "wasnt",
    "arent",
    "werent",
    "wont",
    "wouldnt",
    "shouldnt",
    "couldnt",
)
NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "none",
        "cannot",
        "cant",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "wasnt",
        "arent",
        "werent",
        "wont",
        "wouldnt",
        "shouldnt",
        "couldnt",
        "n't",
        "nicht",
        "kein",
        "keine",
        "keiner",
        "keinen",
        "keinem",
        "keines",
        "nie",
        "niemals",
        "nichts",
        "niemand",
        "ohne",
        "weder",
    ]
    + [
        # English contractions, with the straight and the typographic apostrophe.
        w.replace("nt", f"n{apostrophe}t")
        for apostrophe in ("'", "’")
        for w in _CONTRACTIONS
    ]
)
_SUFFIXES = ("ere", "erer", "sten", "ste", "en", "er", "es", "em", "e", "n", "s")
CLAUSE_END = frozenset(".!?,;:")
N_CODES = 8
"""Four polarity bins (strong/weak negative, weak/strong positive) times negated or not."""


def _bin(polarity: float) -> int:
    if polarity <= -0.5:
        return 0
    if polarity < 0:
        return 1
    if polarity < 0.5:
        return 2
    return 3


class Lexicon:
    """Word -> polarity in [-1, 1]; lookups fall back to a few German/English inflections."""

    _MEMO_MAX = 200_000

    def __init__(self, polarity: Mapping[str, float]) -> None:
        self.polarity = {w: float(p) for w, p in polarity.items() if p != 0.0}
        self._bins: dict[str, int] = {}
        """token -> polarity bin (-1: not in the lexicon). Words follow Zipf's law, so a
        token is mostly looked up again; a miss costs the whole suffix loop each time."""

    def lookup(self, token: str) -> float | None:
        pol = self.polarity.get(token)
        if pol is not None or len(token) < 5:
            return pol
        for suffix in _SUFFIXES:
            if token.endswith(suffix):
                pol = self.polarity.get(token[: -len(suffix)])
                if pol is not None:
                    return pol
        return None

    def codes(self, docs: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(text index, feature code) for each lexicon hit in canonical texts."""
        doc_ids: list[int] = []
        codes: list[int] = []
        bins = self._bins
        if len(bins) > self._MEMO_MAX:
            bins.clear()
        lookup = self.lookup
        for i, doc in enumerate(docs):
            reach = 0  # how many more tokens a preceding negation flips
            for tok in doc.split():
                code = bins.get(tok)
                if code is None:
                    pol = lookup(tok)
                    code = bins[tok] = -1 if pol is None else _bin(pol)
                if code >= 0:
                    doc_ids.append(i)
                    codes.append(code + (4 if reach else 0))
                if tok in NEGATIONS:
                    reach = 3
                elif tok in CLAUSE_END:
                    reach = 0
                elif reach:
                    reach -= 1
        return np.asarray(doc_ids, dtype=np.int64), np.asarray(codes, dtype=np.int64)

    def to_arrays(self) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.float16]]:
        words = sorted(self.polarity)
        return (
            np.array(words, dtype=np.str_),
            np.array([self.polarity[w] for w in words], dtype=np.float16),
        )

    @classmethod
    def from_arrays(cls, words: npt.NDArray[np.str_], values: npt.NDArray[np.float16]) -> Lexicon:
        return cls(dict(zip(words.tolist(), values.astype(np.float32).tolist(), strict=True)))
