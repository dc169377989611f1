"""Estimate what the *shipped* model (train + dev/val files) does on unseen tweets like a dev file.

Usage (from the repository root, lexicon packages on PYTHONPATH as for train_default.py)::

    PYTHONPATH=.cache/lexicons uv run python services/sentiment/training/shipped_cv.py

The shipped model is refit on the train files *and* the dev/val files (``--final``), so no dev
file can measure it. For each dev file this does a 5-fold cross-validation over that file,
grouped by normalised text: a model is trained on all train files, the other dev files and 4/5
of this file (the same settings as ``train_default.py``), and scored on the held-out 1/5; any
copy of a held-out text is dropped from training first (the files overlap). The pooled
out-of-fold macro-F1 of each file is an estimate of the shipped model on new tweets from that
file's distribution. It is *not* the train-only dev figure and must be reported next to it.
The temperature does not change a prediction, so it is left at 1 here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold
from stormwatch_sentiment.domain.model import LABELS
from stormwatch_sentiment.domain.text import canonical
from stormwatch_sentiment.engines.default import mix
from stormwatch_sentiment.engines.hashing import HashSpec

sys.path.insert(0, str(Path(__file__).parent))
import cv_grid
import train_default as td


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--files", nargs="*", default=list(td.DEV))
    ap.add_argument("--C", type=float, default=2.0)
    ap.add_argument("--nb-C", dest="nb_C", type=float, default=1.0)
    ap.add_argument("--prior", type=json.loads, default=None, help="per-language log bias")
    args = ap.parse_args()
    docs, y, lang = cv_grid.train_docs()
    train_keys = set(docs)
    dev: dict[str, tuple[list[str], np.ndarray]] = {}
    for name in td.DEV:
        texts, labels = td.read(name)
        pairs = [(canonical(t), LABELS.index(lab)) for t, lab in zip(texts, labels, strict=True)]
        if name in td.EVAL_UNSEEN_ONLY:  # as in --final: only its texts not in a train file
            pairs = [p for p in pairs if p[0] not in train_keys]
        dev[name] = ([p[0] for p in pairs], np.array([p[1] for p in pairs]))
    lexicon = td.build_lexicon()
    spec = HashSpec(negation_scope=3)
    ns = argparse.Namespace(balance="language")
    for name in args.files:
        t0 = time.perf_counter()
        texts, yy = dev[name]
        groups = np.unique(np.array(texts), return_inverse=True)[1]
        pred = np.zeros(len(texts), dtype=np.int64)
        folds = StratifiedGroupKFold(args.folds, shuffle=True, random_state=0)
        for _, te in folds.split(texts, yy, groups):
            held = {texts[i] for i in te}
            te_set = set(te.tolist())
            tr_docs = [d for d in docs if d not in held]
            tr_y = [int(v) for d, v in zip(docs, y, strict=True) if d not in held]
            tr_l = [str(v) for d, v in zip(docs, lang, strict=True) if d not in held]
            for other, (o_texts, o_y) in dev.items():
                for i, (d, v) in enumerate(zip(o_texts, o_y, strict=True)):
                    if (other == name and i in te_set) or d in held:
                        continue
                    tr_docs.append(d)
                    tr_y.append(int(v))
                    tr_l.append(td.DEV[other])
            x = td.matrix(tr_docs, spec, lexicon)
            ya, la = np.array(tr_y), np.array(tr_l)
            w, b = td.fit_heads(x, ya, args.C, args.nb_C, td.weights_for(ya, la, ns))
            xt = td.matrix([texts[i] for i in te], spec, lexicon)
            probs = mix((xt @ w + b).astype(np.float32), 2, 1.0)
            logp = np.log(np.maximum(probs, 1e-12))
            if args.prior is not None:
                logp = logp + np.array(args.prior[td.DEV[name]])
            pred[te] = logp.argmax(1)
        f1 = f1_score(yy, pred, average="macro", labels=[0, 1, 2])
        row = {"file": name, "texts": len(texts), "shipped_cv_f1": round(float(f1), 4)}
        row["s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
