"""Train the offline default sentiment model from ../shared/data/sentiment.

Usage (from the repository root)::

    uv run python services/sentiment/training/train_default.py            # dev figures only
    uv run python services/sentiment/training/train_default.py --save     # + write the model
    uv run python services/sentiment/training/train_default.py --save --final  # + val files

Without ``--final`` the model sees the *train* files only and every dev/val file is reported
as unseen data. ``--final`` adds the dev/val files to the training set for the shipped model;
its figures are then no longer held-out, which the model card says.

The files overlap: the UMSAB German part is a sample of SB-10k, and 1,430 of the 2,000
TweetEval validation tweets are also in the UMSAB English train file (both sample
SemEval-2017). So texts (after normalisation) of the UMSAB val and SB-10k/PotTS dev files are
removed from training, and ``tweeteval_en_val`` is evaluated on its texts that are not in any
training file (dropping them from training instead would leave only ~400 English tweets).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from stormwatch_sentiment.domain.model import LABELS
from stormwatch_sentiment.domain.text import canonical
from stormwatch_sentiment.engines.default import HashedLinearModel
from stormwatch_sentiment.engines.hashing import HashSpec, featurize_canonical
from stormwatch_sentiment.engines.lexicon import Lexicon

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "sentiment"
OUT = ROOT / "services/sentiment/src/stormwatch_sentiment/models/default/model.npz"

TRAIN = {"umsab_de_train": "de", "sb10k_de_train": "de", "umsab_en_train": "en"}
EVAL_UNSEEN_ONLY = {"tweeteval_en_val"}
DEV = {
    "umsab_de_val": "de",
    "sb10k_de_dev": "de",
    "potts_de_dev": "de",
    "umsab_en_val": "en",
    "tweeteval_en_val": "en",
}


def lexicon_files() -> tuple[Path, Path]:
    """The polarity lexicons shipped inside two PyPI packages (found, not imported).

    vaderSentiment (MIT): vader_lexicon.txt, English, mean valence -4..4.
    textblob-de (MIT; lexicon: German Polarity Lexicon, Klenner/Clematide et al., Apache-2.0
    note in the file): data/de-sentiment.xml, polarity -1..1.
    Install them for training only: ``uv pip install --no-deps vadersentiment textblob-de``.
    """
    found = []
    for pkg, rel in (
        ("vaderSentiment", "vader_lexicon.txt"),
        ("textblob_de", "data/de-sentiment.xml"),
    ):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(
                f"{pkg} not installed: uv pip install --no-deps vadersentiment textblob-de"
            )
        found.append(Path(next(iter(spec.submodule_search_locations))) / rel)
    return found[0], found[1]


def build_lexicon() -> Lexicon:
    """English and German polarity in one table; words listed in both languages are dropped
    (German "bad", "gift", "arm" mean bath, poison, poor)."""
    en_path, de_path = lexicon_files()
    en: dict[str, float] = {}
    for line in en_path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            en[parts[0].lower()] = max(-1.0, min(1.0, float(parts[1]) / 4.0))
    de: dict[str, list[float]] = {}
    pattern = re.compile(r'form="([^"]+)"[^>]*polarity="([-0-9.]+)"')
    for form, pol in pattern.findall(de_path.read_text(encoding="utf-8")):
        de.setdefault(form.lower(), []).append(float(pol))
    merged = {w: float(np.mean(p)) for w, p in de.items() if w not in en}
    merged.update({w: p for w, p in en.items() if w not in de})
    return Lexicon({w: p for w, p in merged.items() if abs(p) >= 0.1})


def read(name: str) -> tuple[list[str], list[str]]:
    with (DATA / f"{name}.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert rows[0] == ["label", "text"], rows[0]
    return [r[1] for r in rows[1:]], [r[0] for r in rows[1:]]


def matrix(docs: list[str], spec: HashSpec, lexicon: Lexicon | None) -> sp.csr_matrix:
    feats = featurize_canonical(docs, spec, lexicon)
    return sp.csr_matrix(
        (feats.values(), (feats.doc, feats.bucket)), shape=(len(docs), 1 << spec.bits)
    )


def fit(
    docs: list[str],
    labels: list[str],
    spec: HashSpec,
    c: float,
    class_weight: str | None,
    lexicon: Lexicon | None,
) -> HashedLinearModel:
    x = matrix(docs, spec, lexicon)
    y = np.array([LABELS.index(lab) for lab in labels])
    clf = LogisticRegression(C=c, max_iter=3000, class_weight=class_weight, tol=1e-5)
    clf.fit(x, y)
    weights = clf.coef_.T.astype(np.float32).copy()
    return HashedLinearModel(
        weights, clf.intercept_.astype(np.float32), LABELS, spec, "default", lexicon
    )


def evaluate(model: HashedLinearModel, dev: dict[str, tuple[list[str], list[str]]]) -> dict:
    out: dict[str, float] = {}
    for name, (texts, labels) in dev.items():
        pred = [s.label for s in model.predict(texts)]
        out[name] = round(float(f1_score(labels, pred, average="macro", labels=LABELS)), 4)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bits", type=int, default=20)
    ap.add_argument("--C", type=float, nargs="+", default=[2.0])
    ap.add_argument("--char-max", type=int, default=5)
    ap.add_argument("--balanced", action="store_true", default=True)
    ap.add_argument("--no-balanced", dest="balanced", action="store_false")
    ap.add_argument("--no-lexicon", action="store_true")
    ap.add_argument("--save", action="store_true")
    ap.add_argument("--final", action="store_true", help="also train on the dev/val files")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    dev = {name: read(name) for name in DEV}
    dev_keys = {
        canonical(t)
        for name, (texts, _) in dev.items()
        if name not in EVAL_UNSEEN_ONLY
        for t in texts
    }
    docs: list[str] = []
    labels: list[str] = []
    dropped = 0
    for name in TRAIN:
        texts, labs = read(name)
        for text, lab in zip(texts, labs, strict=True):
            key = canonical(text)
            if key in dev_keys:
                dropped += 1
                continue
            docs.append(key)
            labels.append(lab)
    print(f"train: {len(docs)} texts ({dropped} dropped: also in a dev/val file)", file=sys.stderr)
    seen = set(docs)
    for name in EVAL_UNSEEN_ONLY:
        texts, labs = dev[name]
        pairs = [(t, lab) for t, lab in zip(texts, labs, strict=True) if canonical(t) not in seen]
        print(f"{name}: evaluated on {len(pairs)} of {len(texts)} texts", file=sys.stderr)
        dev[name] = ([t for t, _ in pairs], [lab for _, lab in pairs])

    spec = HashSpec(bits=args.bits, char_max=args.char_max)
    lexicon = None if args.no_lexicon else build_lexicon()
    if lexicon is not None:
        print(f"lexicon: {len(lexicon.polarity)} words", file=sys.stderr)
    cw = "balanced" if args.balanced else None
    results = []
    for c in args.C:
        t0 = time.perf_counter()
        model = fit(docs, labels, spec, c, cw, lexicon)
        scores = evaluate(model, dev)
        de = np.mean([v for k, v in scores.items() if DEV[k] == "de"])
        en = np.mean([v for k, v in scores.items() if DEV[k] == "en"])
        row = {"C": c, "mean_de": round(float(de), 4), "mean_en": round(float(en), 4), **scores}
        row["fit_s"] = round(time.perf_counter() - t0, 1)
        results.append(row)
        print(json.dumps(row), flush=True)

    if args.save:
        c = args.C[0]
        meta: dict[str, object] = {
            "C": c,
            "class_weight": cw,
            "train_files": list(TRAIN),
            "dev_figures": results[0],
        }
        if args.final:
            for name in DEV:
                texts, labs = dev[name]
                docs.extend(canonical(t) for t in texts)
                labels.extend(labs)
            meta["train_files"] = list(TRAIN) + list(DEV)
            meta["final"] = True
            model = fit(docs, labels, spec, c, cw, lexicon)
        else:
            model = fit(docs, labels, spec, c, cw, lexicon)
        meta["n_train"] = len(docs)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        model.save(args.out, meta)
        print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
