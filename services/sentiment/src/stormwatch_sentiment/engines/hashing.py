"""Hashed word and character n-gram features, computed for a whole batch in numpy.

Why hashing: no vocabulary to ship or keep in sync, and unseen words still hit character
n-grams learned from related words (German compounds, misspellings, elongations).

Why batch-wise numpy instead of a Python loop over n-grams: a tweet has ~500 n-grams; hashing
them one by one in Python costs ~100 µs per text, far from the 5,000 texts/s goal. Here all
texts of a batch are concatenated into one code-point array and every n-gram hash is a
handful of vectorised uint64 operations (arithmetic wraps modulo 2**64, which is what a hash
wants). Training uses exactly this function, so features cannot drift between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stormwatch_sentiment.domain.language import guess_language
from stormwatch_sentiment.domain.text import canonical
from stormwatch_sentiment.engines.lexicon import CLAUSE_END, NEGATIONS, Lexicon

U64 = np.uint64
_SEP = 10  # "\n" separates texts in the concatenated batch; canonical() never emits it
_SPACE = 32
_BASE = 0x100000001B3  # odd, so it has an inverse modulo 2**64
_BASE_INV = pow(_BASE, -1, 2**64)
_M1 = U64(0xBF58476D1CE4E5B9)
_M2 = U64(0x94D049BB133111EB)
_PAIR = U64(0x9E3779B97F4A7C15)

IntArray = npt.NDArray[np.int64]
N_BLOCKS = 8
"""Blocks 0-3 as in ``Features``; 4-7 are their language copies (each scaled like its own)."""
_LANG_CODE = {"de": 1, "en": 2}
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


@dataclass(frozen=True, slots=True)
class HashSpec:
    """What goes into a feature vector; stored with the model so inference matches training."""

    bits: int = 20
    char_min: int = 2
    char_max: int = 5
    word_bigrams: bool = True
    negation_scope: int = 0
    """Words up to this many tokens after a negation (not past , . ! ? ; :) also count as
    ``NEG_word`` features; 0 turns this off (model format 1 had none)."""
    fold_umlauts: bool = False
    """Words with ä/ö/ü/ß also count as their ASCII spelling (ae/oe/ue/ss): tweets write
    "für" and "fuer", "Straße" and "Strasse", and the train data has too few of each spelling
    to learn both. Off in the v1/v2 models."""
    language_copies: bool = False
    """Word, lexicon and negation features of a text the language guesser calls German or
    English also count once more under a language-specific hash (feature augmentation,
    Daumé III 2007): shared weights carry what both languages agree on, the copies what is
    language-specific (the German lexicon's polarity scale is not VADER's). Off in v1/v2."""
    char_within_words: bool = False
    """Character n-grams stay inside one word (a space may only be their first or last
    character, marking the word's start or end), as scikit-learn's ``char_wb``; off in
    v1/v2, where they also span word boundaries."""


@dataclass(frozen=True, slots=True)
class Features:
    """Sparse features of a batch: one row per n-gram occurrence.

    ``block`` is 0 for word, 1 for character, 2 for lexicon and 3 for negation-scope features;
    each block of a text is scaled by ``1/sqrt(count)`` so that long and short texts land on
    the same scale.
    """

    doc: IntArray
    bucket: IntArray
    block: IntArray
    n_docs: int

    def values(self) -> npt.NDArray[np.float32]:
        key = self.doc * N_BLOCKS + self.block
        counts = np.bincount(key, minlength=N_BLOCKS * self.n_docs)
        scale: npt.NDArray[np.float32] = 1.0 / np.sqrt(np.maximum(counts, 1)).astype(np.float32)
        out: npt.NDArray[np.float32] = scale[key]
        return out


def _mix(x: npt.NDArray[np.uint64], salt: int, bits: int) -> IntArray:
    """splitmix64 finaliser: spreads similar polynomial hashes over the buckets."""
    x = x ^ U64(salt)
    x = x ^ (x >> U64(30))
    x = x * _M1
    x = x ^ (x >> U64(27))
    x = x * _M2
    x = x ^ (x >> U64(31))
    return (x >> U64(64 - bits)).astype(np.int64)


def _word_hashes(words: Sequence[str]) -> npt.NDArray[np.uint64]:
    """The position-independent word hash of ``featurize_canonical`` for single words."""
    out = np.zeros(len(words), dtype=np.uint64)
    for i, word in enumerate(words):
        h = U64(0)
        power = U64(1)
        for ch in word:
            h = h + U64(ord(ch)) * power
            power = power * U64(_BASE)
        out[i] = h
    return out


with np.errstate(over="ignore"):
    NEGATION_HASHES = np.unique(_word_hashes(sorted(NEGATIONS)))
    CLAUSE_END_HASHES = np.unique(_word_hashes(sorted(CLAUSE_END)))


def _negation_scope(word_h: npt.NDArray[np.uint64], word_doc: IntArray, reach: int) -> IntArray:
    """Indices of words inside a negation's scope: at most ``reach`` words after a negation,
    same text, no clause punctuation in between (the NEG_ marking of Das & Chen 2001 and
    Pang et al. 2002, vectorised: the last negation and the last clause end before each word
    come from running maxima over their positions)."""
    n = word_h.shape[0]
    pos = np.arange(n, dtype=np.int64)
    is_neg = np.isin(word_h, NEGATION_HASHES)
    is_end = np.isin(word_h, CLAUSE_END_HASHES)
    doc_start = np.flatnonzero(np.r_[True, word_doc[1:] != word_doc[:-1]])
    first = np.zeros(n, dtype=np.int64)
    first[doc_start] = doc_start
    first = np.maximum.accumulate(first)
    last_neg = np.maximum.accumulate(np.where(is_neg, pos, -1))
    last_end = np.maximum.accumulate(np.where(is_end, pos, -1))
    prev_neg = np.r_[-1, last_neg[:-1]]
    ok = (prev_neg >= first) & (prev_neg > last_end) & (pos - prev_neg <= reach)
    return np.flatnonzero(ok & ~is_end)


def _word_spans(
    codes: npt.NDArray[np.uint64], is_sep: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.uint64], IntArray]:
    """Hash and start offset of every word (span between spaces/separators): a polynomial
    hash made position-independent by prefix sums times inverse powers of the base."""
    length = codes.shape[0]
    powers = np.cumprod(np.full(length, _BASE, dtype=np.uint64))
    powers = np.concatenate((np.ones(1, dtype=np.uint64), powers[:-1]))
    inv_powers = np.cumprod(np.full(length, _BASE_INV, dtype=np.uint64))
    inv_powers = np.concatenate((np.ones(1, dtype=np.uint64), inv_powers[:-1]))
    prefix = np.concatenate((np.zeros(1, dtype=np.uint64), np.cumsum(codes * powers)))
    delim = np.flatnonzero(is_sep | (codes == U64(_SPACE)))
    starts = delim[:-1] + 1
    ends = delim[1:]
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    word_h: npt.NDArray[np.uint64] = (prefix[ends] - prefix[starts]) * inv_powers[starts]
    return word_h, starts


def featurize(texts: Sequence[str], spec: HashSpec, lexicon: Lexicon | None = None) -> Features:
    return featurize_canonical([canonical(t) for t in texts], spec, lexicon)


def featurize_canonical(
    docs: Sequence[str], spec: HashSpec, lexicon: Lexicon | None = None
) -> Features:
    n_docs = len(docs)
    empty = np.zeros(0, dtype=np.int64)
    if n_docs == 0:
        return Features(empty, empty, empty, 0)
    joined = "\n".join(docs)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    length = codes.shape[0]
    is_sep = codes == U64(_SEP)
    doc_of = np.cumsum(is_sep, dtype=np.int64) - is_sep  # separators counted before position

    docs_out: list[IntArray] = []
    buckets_out: list[IntArray] = []
    blocks_out: list[IntArray] = []

    # Character n-grams: rolling polynomial over the canonical text (spaces included, so
    # word starts and ends are visible), never across the separator between texts.
    h = codes.copy()
    if spec.char_within_words:
        spaces = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(codes == U64(_SPACE))))
    for n in range(2, spec.char_max + 1):
        width = length - n + 1
        if width <= 0:
            break
        h = h[:width] * U64(_BASE) + codes[n - 1 : n - 1 + width]
        if n < spec.char_min:
            continue
        start_doc = doc_of[:width]
        ok = (start_doc == doc_of[n - 1 : n - 1 + width]) & ~is_sep[:width]
        ok &= ~is_sep[n - 1 : n - 1 + width]
        if spec.char_within_words and n > 2:  # no space strictly inside the n-gram
            ok &= spaces[n - 1 : n - 1 + width] == spaces[1 : 1 + width]
        idx = np.flatnonzero(ok)
        docs_out.append(start_doc[idx])
        buckets_out.append(_mix(h[idx], 0x1000 + n, spec.bits))
        blocks_out.append(np.ones(idx.shape[0], dtype=np.int64))

    # Words: spans between delimiters, hashed position-independently with prefix sums.
    word_h, starts = _word_spans(codes, is_sep)
    if starts.shape[0]:
        word_doc = doc_of[starts]
        docs_out.append(word_doc)
        buckets_out.append(_mix(word_h, 0x2001, spec.bits))
        blocks_out.append(np.zeros(starts.shape[0], dtype=np.int64))
        if spec.fold_umlauts and not joined.isascii():
            # Folding never adds or removes a space, so the folded words line up one to one.
            folded = joined.translate(_FOLD)
            if folded != joined:
                fcodes = np.frombuffer(folded.encode("utf-32-le"), dtype=np.uint32)
                fold_h, _ = _word_spans(fcodes.astype(np.uint64), fcodes == _SEP)
                changed = np.flatnonzero(fold_h != word_h)
                docs_out.append(word_doc[changed])
                buckets_out.append(_mix(fold_h[changed], 0x2001, spec.bits))
                blocks_out.append(np.zeros(changed.shape[0], dtype=np.int64))
        if spec.word_bigrams and starts.shape[0] > 1:
            same = np.flatnonzero(word_doc[:-1] == word_doc[1:])
            pair = word_h[same] * _PAIR + word_h[same + 1]
            docs_out.append(word_doc[same])
            buckets_out.append(_mix(pair, 0x2002, spec.bits))
            blocks_out.append(np.zeros(same.shape[0], dtype=np.int64))
        if spec.negation_scope > 0:
            scoped = _negation_scope(word_h, word_doc, spec.negation_scope)
            docs_out.append(word_doc[scoped])
            buckets_out.append(_mix(word_h[scoped], 0x4001, spec.bits))
            blocks_out.append(np.full(scoped.shape[0], 3, dtype=np.int64))

    if lexicon is not None:
        lex_doc, lex_code = lexicon.codes(docs)
        docs_out.append(lex_doc)
        buckets_out.append(_mix(lex_code.astype(np.uint64), 0x3001, spec.bits))
        blocks_out.append(np.full(lex_doc.shape[0], 2, dtype=np.int64))

    doc = np.concatenate(docs_out) if docs_out else empty
    bucket = np.concatenate(buckets_out) if buckets_out else empty
    block = np.concatenate(blocks_out) if blocks_out else empty
    if spec.language_copies and doc.shape[0]:
        lang = np.array([_LANG_CODE.get(guess_language(d), 0) for d in docs], dtype=np.uint64)
        sel = np.flatnonzero((lang[doc] > 0) & (block != 1))
        copied = bucket[sel].astype(np.uint64) * U64(4) + lang[doc[sel]]
        doc = np.concatenate((doc, doc[sel]))
        bucket = np.concatenate((bucket, _mix(copied, 0x5001, spec.bits)))
        block = np.concatenate((block, block[sel] + 4))
    return Features(doc=doc, bucket=bucket, block=block, n_docs=n_docs)
