"""Grouped 3-fold CV on the train files for the 2026-12-01 ideas (no dev file is read).

Usage (from the repository root, lexicon packages on PYTHONPATH as for train_default.py)::

    PYTHONPATH=.cache/lexicons uv run python services/sentiment/training/cv_ideas.py NAME...

Each NAME is one change from v2 (see ``IDEAS``); ``base`` is v2 itself. Same folds as
``train_default.cross_validate`` (StratifiedGroupKFold over language x label, grouped by
normalised text, seed 0). Besides the plain out-of-fold macro-F1 per language, every run
also reports it after a per-language class-prior correction (a log-bias per language and
class added before the argmax), fit *cross-fitted* on the out-of-fold probabilities: the
bias for the texts of fold k is the one that maximises macro-F1 on the other folds' texts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.naive_bayes import MultinomialNB
from stormwatch_sentiment.engines.default import mix
from stormwatch_sentiment.engines.hashing import HashSpec
from stormwatch_sentiment.engines.lexicon import CLAUSE_END, NEGATIONS, Lexicon, _bin

sys.path.insert(0, str(Path(__file__).parent))
import cv_grid
import train_default as td

IDEAS: dict[str, dict[str, object]] = {
    "base": {},
    "nb_alpha_0.5": {"nb_alpha": 0.5},
    "nb_alpha_0.25": {"nb_alpha": 0.25},
    "bits_21": {"bits": 21},
    "bits_22": {"bits": 22},
    "char_wb": {"char_within_words": True},
    "char_wb_6": {"char_within_words": True, "char_max": 6},
    "lex_dense": {"lex_dense": True},
    "lex_compound": {"lex_compound": True},
    "mnb_head": {"mnb": True},
    "affix5": {"affix": 5},
    "emoji_lex": {"emoji": True},
}
EMOJI = {  # hand-set polarity of common emoji/symbols (-1..1), added to the lexicon
    **dict.fromkeys("😡😠🤬🤮🤢👎😤💩😒😞😔😟😢😭😩😫😣😖🙄😱😨💔☹", -0.8),
    **dict.fromkeys("😕😐😑😬😓😥", -0.3),
    **dict.fromkeys("😍🥰😘❤♥♡💕💖💗💙💚💛💜😊☺🙂😀😃😄😁😆😂🤣😉👍👏🙏💪🎉✨🌟😎🤗😇🌹", 0.7),
}
GRID = [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0]


def compound_codes(docs: list[str], lexicon: Lexicon) -> sp.csr_matrix:
    """German compounds: a token of 8+ letters not in the lexicon whose longest lexicon word
    of 5+ letters is its head (suffix) or modifier (prefix) gets that word's polarity bin,
    as 8 extra columns (4 bins x head/modifier), scaled 1/sqrt(count) per text."""
    words = sorted((w for w in lexicon.polarity if len(w) >= 5 and w.isalpha()), key=len)
    by_len: dict[int, set[str]] = {}
    for w in words:
        by_len.setdefault(len(w), set()).add(w)
    lengths = sorted(by_len, reverse=True)
    memo: dict[str, int] = {}
    rows, cols = [], []
    for i, doc in enumerate(docs):
        for tok in doc.split():
            code = memo.get(tok)
            if code is None:
                code = -1
                if len(tok) >= 8 and tok.isalpha() and lexicon.lookup(tok) is None:
                    for n in lengths:
                        if n > len(tok) - 3:
                            continue
                        if tok[-n:] in by_len[n]:
                            code = _bin(lexicon.polarity[tok[-n:]])
                            break
                        if tok[:n] in by_len[n]:
                            code = 4 + _bin(lexicon.polarity[tok[:n]])
                            break
                memo[tok] = code
            if code >= 0:
                rows.append(i)
                cols.append(code)
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(docs), 8))
    n = np.asarray(m.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.sqrt(np.maximum(n, 1))) @ m


def affixes(docs: list[str], n: int) -> sp.csr_matrix:
    """First and last ``n`` letters of every word of 7+ letters (German compounds share
    their modifier and head), own columns per affix, scaled 1/sqrt(count) per text."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, doc in enumerate(docs):
        for tok in doc.split():
            if len(tok) >= 7 and tok.isalpha():
                for key in ("<" + tok[:n], tok[-n:] + ">"):
                    rows.append(i)
                    cols.append(vocab.setdefault(key, len(vocab)))
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(docs), len(vocab)))
    cnt = np.asarray(m.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.sqrt(np.maximum(cnt, 1))) @ m


def dense_lexicon(docs: list[str], lexicon: Lexicon) -> sp.csr_matrix:
    """Sum of positive and of negative polarity (negation-flipped, 3 tokens), each / sqrt of
    the token count, and their max/min: 4 dense columns."""
    out = np.zeros((len(docs), 4))
    for i, doc in enumerate(docs):
        toks = doc.split()
        reach = 0
        pos, neg, hi, lo = 0.0, 0.0, 0.0, 0.0
        for tok in toks:
            pol = lexicon.lookup(tok)
            if pol is not None:
                if reach:
                    pol = -pol
                if pol > 0:
                    pos += pol
                    hi = max(hi, pol)
                else:
                    neg += pol
                    lo = min(lo, pol)
            if tok in NEGATIONS:
                reach = 3
            elif tok in CLAUSE_END:
                reach = 0
            elif reach:
                reach -= 1
        scale = 1.0 / np.sqrt(max(len(toks), 1))
        out[i] = (pos * scale * 2, neg * scale * 2, hi, lo)
    return sp.csr_matrix(out)


def fit_bias(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log-bias (neg, 0, pos) on a grid maximising macro-F1 (neutral fixed at 0)."""
    logp = np.log(np.maximum(probs, 1e-12))
    best, best_f = np.zeros(3), -1.0
    for a, c in itertools.product(GRID, GRID):
        b = np.array([a, 0.0, c])
        f = f1_score(y, (logp + b).argmax(1), average="macro", labels=[0, 1, 2])
        if f > best_f + 1e-9 or (abs(f - best_f) <= 1e-9 and np.abs(b).sum() < np.abs(best).sum()):
            best, best_f = b, f
    return best


SEED = 0
"""Fold seed; ``--seed N`` as the first argument re-splits (to see the split-to-split noise)."""


def run(name: str, docs: list[str], y: np.ndarray, lang: np.ndarray, lexicon: Lexicon) -> dict:
    cfg = {"C": 2.0, "nb_C": 1.0, "nb_alpha": 1.0, **IDEAS[name]}
    spec = HashSpec(
        bits=int(cfg.get("bits", 20)),  # type: ignore[call-overload]
        char_max=int(cfg.get("char_max", 5)),  # type: ignore[call-overload]
        negation_scope=3,
        char_within_words=bool(cfg.get("char_within_words", False)),
    )
    if cfg.get("emoji"):
        lexicon = Lexicon({**lexicon.polarity, **EMOJI})
    x = td.matrix(docs, spec, lexicon)
    if cfg.get("lex_dense"):
        x = sp.hstack([x, dense_lexicon(docs, lexicon)]).tocsr()
    if cfg.get("affix"):
        x = sp.hstack([x, affixes(docs, int(cfg["affix"]))]).tocsr()  # type: ignore[call-overload]
    if cfg.get("lex_compound"):
        x = sp.hstack([x, compound_codes(docs, lexicon)]).tocsr()
    oof = np.zeros((len(y), 3), dtype=np.float32)
    fold_of = np.zeros(len(y), dtype=np.int64)
    strata = np.char.add(lang.astype(str), y.astype(str))
    groups = np.unique(np.array(docs), return_inverse=True)[1]
    folds = StratifiedGroupKFold(3, shuffle=True, random_state=SEED)
    ns = argparse.Namespace(balance="language")
    for k, (tr, te) in enumerate(folds.split(np.zeros(len(y)), strata, groups)):
        wt = td.weights_for(y[tr], lang[tr], ns)
        w, b = td.fit_heads(x[tr], y[tr], cfg["C"], cfg["nb_C"], wt, cfg["nb_alpha"])  # type: ignore[arg-type]
        logits = (x[te] @ w + b).astype(np.float32)
        heads = 2
        if cfg.get("mnb"):
            nb = MultinomialNB(alpha=0.1).fit(x[tr], y[tr], sample_weight=wt)
            logits = np.hstack([logits, nb.predict_log_proba(x[te]).astype(np.float32)])
            heads = 3
        oof[te] = mix(logits, heads, 1.0)
        fold_of[te] = k
    row: dict[str, object] = {"idea": name, "seed": SEED}
    for g in ("de", "en"):
        sel = lang == g
        row[f"cv_{g}"] = round(float(f1_score(y[sel], oof[sel].argmax(1), average="macro")), 4)
        pred = np.zeros(sel.sum(), dtype=np.int64)
        ys, ps, fs = y[sel], oof[sel], fold_of[sel]
        for k in range(3):
            bias = fit_bias(ps[fs != k], ys[fs != k])
            pred[fs == k] = (np.log(np.maximum(ps[fs == k], 1e-12)) + bias).argmax(1)
        row[f"cv_{g}_prior"] = round(float(f1_score(ys, pred, average="macro")), 4)
        row[f"bias_{g}"] = fit_bias(ps, ys).tolist()
    return row


def main() -> int:
    global SEED
    names = sys.argv[1:]
    if names[:1] == ["--seed"]:
        SEED, names = int(names[1]), names[2:]
    names = names or list(IDEAS)
    docs, y, lang = cv_grid.train_docs()
    lexicon = td.build_lexicon()
    for name in names:
        t0 = time.perf_counter()
        row = run(name, docs, y, lang, lexicon)
        row["s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
