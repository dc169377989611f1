"""Choose the default model's settings by cross-validation on the train files only.

Usage (from the repository root, lexicon packages on PYTHONPATH as for train_default.py)::

    PYTHONPATH=.cache/lexicons uv run python services/sentiment/training/cv_grid.py

Prints one JSON line per setting: out-of-fold macro-F1 per language (3-fold, stratified by
language x label, the same folds as train_default.py). No dev file is read, so nothing here
can be tuned to one; the dev files are only scored for the setting picked here, by
train_default.py. The grid is deliberately small (two shared cores): one change at a time
from the v2 defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from stormwatch_sentiment.domain.model import LABELS
from stormwatch_sentiment.domain.text import canonical
from stormwatch_sentiment.engines.hashing import HashSpec

sys.path.insert(0, str(Path(__file__).parent))
import train_default as td

BASE = {
    "C": 2.0,
    "nb_C": 1.0,
    "char_max": 5,
    "negation_scope": 3,
    "fold_umlauts": False,
    "language_copies": False,
}
GRID = [
    {},
    {"fold_umlauts": True},
    {"C": 1.0},
    {"C": 4.0},
    {"nb_C": 0.5},
    {"nb_C": 2.0},
    {"negation_scope": 0},
    {"negation_scope": 2},
    {"negation_scope": 4},
    {"char_max": 4},
    {"char_max": 6},
    {"language_copies": True},
    {"language_copies": True, "fold_umlauts": True},
]


def train_docs() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The train files minus texts also in a dev/val file (as train_default.py does)."""
    dev_keys = {
        canonical(t) for name in td.DEV if name not in td.EVAL_UNSEEN_ONLY for t in td.read(name)[0]
    }
    docs, labels, langs = [], [], []
    for name, lang in td.TRAIN.items():
        for text, lab in zip(*td.read(name), strict=True):
            key = canonical(text)
            if key not in dev_keys:
                docs.append(key)
                labels.append(LABELS.index(lab))
                langs.append(lang)
    return docs, np.array(labels), np.array(langs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", type=int, nargs="*", help="indices into the grid")
    ap.add_argument("--extra", type=json.loads, default=[], help="JSON list of more changes")
    args = ap.parse_args()
    docs, y, lang = train_docs()
    lexicon = td.build_lexicon()
    cache: dict[tuple[object, ...], object] = {}
    for i, change in enumerate(GRID + args.extra):
        if args.only and i not in args.only and i < len(GRID):
            continue
        cfg = {**BASE, **change}
        key = (cfg["char_max"], cfg["negation_scope"], cfg["fold_umlauts"], cfg["language_copies"])
        if key not in cache:
            spec = HashSpec(
                char_max=int(cfg["char_max"]),
                negation_scope=int(cfg["negation_scope"]),
                fold_umlauts=bool(cfg["fold_umlauts"]),
                language_copies=bool(cfg["language_copies"]),
            )
            cache = {key: td.matrix(docs, spec, lexicon)}  # keep one matrix in memory
        x, yy, ll, dd = cache[key], y, lang, docs
        if cfg.get("dedupe"):  # one copy of each text (the first file's label)
            first = np.unique(np.array(docs), return_index=True)[1]
            x, yy, ll, dd = x[first], y[first], lang[first], [docs[i] for i in first]  # type: ignore[index]
        ns = argparse.Namespace(C=cfg["C"], nb_C=cfg["nb_C"], cv=3, balance="language")
        t0 = time.perf_counter()
        temperature, scores = td.cross_validate(x, yy, ll, ns, dd)  # type: ignore[arg-type]
        row = {"i": i, **change, **scores, "T": temperature}
        row["fit_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
