"""The compiled route to the default model's weight sums (``featc.c``), where it is built.

Why: in the pipeline the numpy featurizer and weight gather of ``hashing`` and ``default``
were the largest part of the sentiment stage's CPU per mention, and then the lexicon's
Python loop over every token (``Lexicon.codes``). ``featc.c`` computes the same features,
lexicon codes included, and sums in one pass, with the same floats bit for bit
(``tests/unit/test_native_features.py``); ``hashing`` and ``lexicon`` stay the reference and
what training runs. The same library also turns raw texts into canonical ones
(``sw_canonical``; ``text.canonical`` is its reference, ``tests/unit/test_native_canonical.py``)
and tells which texts hold any of the topic tagger's needles (``sw_needles_*``;
pyahocorasick's scan is the reference, ``tests/unit/test_native_needles.py``).

The library is compiled by ``tools/build_native.py`` (``make setup``) into
``_native/<key>/`` beside this file, ``<key>`` a hash of the C source and the platform: an
edited source is never run as a stale library, the numpy route is used until it is rebuilt.
``STORMWATCH_PURE_PYTHON=1`` forces the numpy route, as for the detector.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import sys
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from stormwatch_sentiment.engines.hashing import HashSpec
    from stormwatch_sentiment.engines.lexicon import Lexicon

_HERE = Path(__file__).resolve().parent
SOURCE = _HERE / "featc.c"
LIBRARY = "libstormwatch_featc.so"


def native_key() -> str:
    """A hash of the C source and of what the library is built for."""
    h = hashlib.sha256()
    h.update(f"{sys.platform} {platform.machine()}\0".encode())
    h.update(SOURCE.read_bytes())
    return h.hexdigest()[:16]


def native_dir() -> Path:
    return _HERE / "_native" / native_key()


def _load() -> Callable[..., int] | None:
    if os.environ.get("STORMWATCH_PURE_PYTHON", "").strip() not in ("", "0"):
        return None
    try:
        root = native_dir()
    except OSError:  # an install without the C source (a wheel) has no build either
        return None
    if not (root / "BUILT").is_file():  # written last by the build
        return None
    try:
        lib = ctypes.CDLL(str(root / LIBRARY))
    except OSError:
        return None
    i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    fn = lib.sw_hashed_sums
    fn.restype = c_int
    fn.argtypes = [ptr, i64, i64, c_int, c_int, c_int, c_int, c_int, c_int]
    fn.argtypes += [ptr, i64, ptr, i64, ptr, ptr, i64, ptr, ptr, i64, c_int, ptr]
    lib.sw_lexicon_new.restype = ptr
    lib.sw_lexicon_new.argtypes = [ptr, ptr, ptr, i64, ptr, ptr, i64, ptr, ptr, i64, ptr, i64]
    lib.sw_lexicon_free.restype = None
    lib.sw_lexicon_free.argtypes = [ptr]
    lib.sw_canonical.restype = i64
    lib.sw_canonical.argtypes = [ptr, ptr, ptr, i64, ptr, i64, ptr, i64]
    lib.sw_needles_new.restype = ptr
    lib.sw_needles_new.argtypes = [ptr, ptr, i64]
    lib.sw_needles_free.restype = None
    lib.sw_needles_free.argtypes = [ptr]
    lib.sw_needles_scan.restype = None
    lib.sw_needles_scan.argtypes = [ptr, ptr, ptr, i64, ptr]
    _LIB.append(lib)
    return fn  # type: ignore[no-any-return]


_LIB: list[ctypes.CDLL] = []
_SUMS = _load()
NATIVE = _SUMS is not None
"""True when the compiled library of the current source is in use."""


def _strings(words: Sequence[str]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    """Words as one UTF-32 array and their start offsets (one more: the end)."""
    chars = np.frombuffer("".join(words).encode("utf-32-le"), dtype=np.uint32)
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in words], out=offsets[1:])
    return chars, offsets


def _lexicon_table(lexicon: Lexicon) -> int | None:
    """The C copy of ``lexicon`` (built once per lexicon, freed with it), or None."""
    from stormwatch_sentiment.engines.lexicon import _SUFFIXES, CLAUSE_END, NEGATIONS, _bin

    cached = lexicon.__dict__.get("_native_table")
    if cached is not None or not _LIB:
        return cached  # type: ignore[no-any-return]
    lib = _LIB[0]
    words = list(lexicon.polarity)
    bins = np.array([_bin(lexicon.polarity[w]) for w in words], dtype=np.int8)
    pol_chars, pol_off = _strings(words)
    neg_chars, neg_off = _strings(sorted(NEGATIONS))
    suf_chars, suf_off = _strings(_SUFFIXES)  # in the order lookup tries them
    ends = np.array([ord(c) for c in sorted(CLAUSE_END)], dtype=np.uint32)
    handle = lib.sw_lexicon_new(
        pol_chars.ctypes.data, pol_off.ctypes.data, bins.ctypes.data, len(words),
        neg_chars.ctypes.data, neg_off.ctypes.data, len(neg_off) - 1,
        suf_chars.ctypes.data, suf_off.ctypes.data, len(suf_off) - 1,
        ends.ctypes.data, len(ends),
    )  # fmt: skip
    if not handle:
        return None
    lexicon.__dict__["_native_table"] = handle
    weakref.finalize(lexicon, lib.sw_lexicon_free, handle)
    return int(handle)


def supports(spec: HashSpec) -> bool:
    """The C route covers every option the shipped models use; folded umlauts and language
    copies (trained and rejected in the German attempts) stay on the numpy route."""
    return NATIVE and not spec.fold_umlauts and not spec.language_copies


_CLASSES: list[npt.NDArray[np.uint8]] = []


def char_classes() -> npt.NDArray[np.uint8]:
    """Per code point 1 for ``\\w`` and 2 for ``\\s``, read off Python's own regex engine (so
    the C tokenizer's classes are the reference's by construction), built once (~0.06 s)."""
    if not _CLASSES:
        # every code point at its own position, the surrogates (which no sanitized text
        # holds, and UTF-32 cannot carry) as NUL, neither word nor space: ~9 MB for a moment,
        # where a join over a million one-character strings peaked at 70 MB
        codes = np.arange(0x110000, dtype=np.uint32)
        codes[0xD800:0xE000] = 0
        every = codes.tobytes().decode("utf-32-le")
        del codes
        classes = np.zeros(0x110000, dtype=np.uint8)
        for pattern, bit in ((r"\w+", 1), (r"\s+", 2)):
            for m in re.finditer(pattern, every):
                classes[m.start() : m.end()] |= bit
        _CLASSES.append(classes)
    return _CLASSES[0]


def _canonical_codes(texts: Sequence[str]) -> npt.NDArray[np.uint32] | None:
    """``"\\n".join(canonical(t) for t in texts)`` as UTF-32, made by ``sw_canonical``; the
    few texts only the Python route spells exactly (see ``text.lowered``) go through it."""
    from stormwatch_sentiment.domain.text import canonical, lowered

    if not _LIB:
        return None
    prepared = [lowered(t) for t in texts]
    process = np.array([p is not None for p in prepared], dtype=np.uint8)
    docs = [canonical(t) if p is None else p for t, p in zip(texts, prepared, strict=True)]
    chars, offsets = _strings(docs)
    # "@a" -> "@user " is the most a text grows (three times); beyond ``cap`` the C call
    # returns -1 and the batch takes the Python route
    cap = 3 * int(offsets[-1]) + 3 * len(docs) + 16
    out = np.empty(cap, dtype=np.uint32)
    classes = char_classes()
    length = _LIB[0].sw_canonical(
        chars.ctypes.data, offsets.ctypes.data, process.ctypes.data, len(docs),
        classes.ctypes.data, classes.shape[0], out.ctypes.data, cap,
    )  # fmt: skip
    return out[:length] if length >= 0 else None


def canonical_texts(texts: Sequence[str]) -> list[str] | None:
    """The canonical texts as the C route makes them (what the tests compare with
    ``text.canonical``), ``None`` where the library is not in use."""
    codes = _canonical_codes(texts)
    if codes is None:
        return None
    return codes.tobytes().decode("utf-32-le").split("\n") if texts else []


def text_sums(
    texts: Sequence[str],
    spec: HashSpec,
    lexicon: Lexicon | None,
    weights: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32] | None:
    """:func:`hashed_sums` of ``[canonical(t) for t in texts]``, the canonical texts made
    in C too: the regexes of ``text.canonical`` were the largest Python part of the
    sentiment stage left. ``None`` where the library is not in use."""
    if _SUMS is None or not supports(spec):
        return None
    if lexicon is not None and _lexicon_table(lexicon) is None:
        return None  # the Python lexicon codes need the texts as ``str``: the other route
    codes = _canonical_codes(texts)
    if codes is None:
        return None
    return _sums(codes, len(texts), spec, lexicon, weights, None)


def hashed_sums(
    docs: Sequence[str],
    spec: HashSpec,
    lexicon: Lexicon | None,
    weights: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32] | None:
    """Per text the sums of its features' weight rows, scaled per block, before the bias:
    what ``HashedLinearModel.logits`` computes with numpy. ``None`` where the library is not
    in use or refuses the input, so the caller takes the numpy route."""
    if _SUMS is None or not supports(spec):
        return None
    codes = np.frombuffer("\n".join(docs).encode("utf-32-le"), dtype=np.uint32)
    return _sums(codes, len(docs), spec, lexicon, weights, docs)


def _sums(
    codes: npt.NDArray[np.uint32],
    n_docs: int,
    spec: HashSpec,
    lexicon: Lexicon | None,
    weights: npt.NDArray[np.float32],
    docs: Sequence[str] | None,
) -> npt.NDArray[np.float32] | None:
    from stormwatch_sentiment.engines.hashing import CLAUSE_END_HASHES, NEGATION_HASHES

    if _SUMS is None:
        return None
    if weights.dtype != np.float32 or not weights.flags.c_contiguous or weights.ndim != 2:
        return None
    table = _lexicon_table(lexicon) if lexicon is not None else None
    if lexicon is not None and table is None:
        if docs is None:
            return None
        lex_doc, lex_code = lexicon.codes(docs)
    else:  # no lexicon, or its C copy finds the codes itself
        lex_doc = lex_code = np.zeros(0, dtype=np.int64)
    lex_doc = np.ascontiguousarray(lex_doc, dtype=np.int64)
    lex_code = np.ascontiguousarray(lex_code, dtype=np.int64)
    width = weights.shape[1]
    out = np.empty((n_docs, width), dtype=np.float32)
    rc = _SUMS(
        codes.ctypes.data,
        codes.shape[0],
        n_docs,
        spec.bits,
        spec.char_min,
        spec.char_max,
        int(spec.char_within_words),
        int(spec.word_bigrams),
        spec.negation_scope,
        NEGATION_HASHES.ctypes.data,
        NEGATION_HASHES.shape[0],
        CLAUSE_END_HASHES.ctypes.data,
        CLAUSE_END_HASHES.shape[0],
        lex_doc.ctypes.data,
        lex_code.ctypes.data,
        lex_doc.shape[0],
        table,
        weights.ctypes.data,
        weights.shape[0],
        width,
        out.ctypes.data,
    )
    return out if rc == 0 else None


class NeedleCheck:
    """Which texts hold any of a set of needles, for a whole batch in one C call
    (``sw_needles_scan``): the pre-check ``TopicTagger.tag_many`` takes, so that the texts
    without any skip the tagger's scan (17 ns per character in pyahocorasick)."""

    def __init__(self, handle: int, lib: ctypes.CDLL) -> None:
        self._handle = handle
        self._scan = lib.sw_needles_scan
        weakref.finalize(self, lib.sw_needles_free, handle)

    def __call__(self, texts: list[str]) -> list[int] | None:
        """1 for each text that holds a needle, else 0; None where the texts cannot be
        passed (a lone surrogate has no UTF-32): the caller then scans them all."""
        try:
            chars, offsets = _strings(texts)
        except UnicodeEncodeError:
            return None
        out = np.zeros(len(texts), dtype=np.uint8)
        self._scan(
            self._handle, chars.ctypes.data, offsets.ctypes.data, len(texts), out.ctypes.data
        )
        held: list[int] = out.tolist()
        return held


def needle_check(needles: Sequence[str]) -> NeedleCheck | None:
    """A :class:`NeedleCheck` for ``needles``, or None where the library is not in use (or
    the needles cannot be compiled): then nothing is pre-checked."""
    if not _LIB or not needles:
        return None
    try:
        chars, offsets = _strings(needles)
    except UnicodeEncodeError:
        return None
    handle = _LIB[0].sw_needles_new(chars.ctypes.data, offsets.ctypes.data, len(needles))
    return NeedleCheck(int(handle), _LIB[0]) if handle else None
