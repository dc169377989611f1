"""Train the offline default sentiment model from ../shared/data/sentiment.

Usage (from the repository root)::

    uv run python services/sentiment/training/train_default.py            # dev figures only
    uv run python services/sentiment/training/train_default.py --save     # + write the model
    uv run python services/sentiment/training/train_default.py --save --final  # + val files

The model (format 2): two heads over the same hashed features, averaged in probability space
and then calibrated with one temperature:

- multinomial logistic regression (``--C``);
- NBSVM (Wang & Manning 2012): per class, the log-count ratio ``r`` of binarised features
  (class vs rest, add-one smoothing) scales the features, a binary logistic regression is fit
  on them, and ``w * r`` is stored, so inference is the same gather as for the first head
  (``--nb-C``).

Both heads weight every (language, class) cell equally (``--balance language``, see
``balance_weights``); this was compared with pooled class balancing by 3-fold cross-validation
on the train files (out-of-fold macro-F1 per language) and won there (and on the dev means).
Since v2 the folds are grouped by normalised text (see ``cross_validate``); v2's own CV
figures and temperature came from ungrouped folds. ``cv_grid.py`` compares settings on the
grouped folds.
``C=2`` is the v1 choice, ``nb-C=1`` and a negation scope of three tokens are the usual
literature settings; none was picked on one dev file. The temperature minimises the
log loss of the out-of-fold mixed probabilities (``--cv`` folds, default 3).

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
from sklearn.model_selection import StratifiedGroupKFold
from stormwatch_sentiment.domain.model import LABELS
from stormwatch_sentiment.domain.text import canonical
from stormwatch_sentiment.engines.default import HashedLinearModel, mix
from stormwatch_sentiment.engines.hashing import HashSpec, featurize_canonical
from stormwatch_sentiment.engines.lexicon import Lexicon

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "sentiment"
OUT = ROOT / "services/sentiment/src/stormwatch_sentiment/models/default/model.npz"

MODEL_ID = "default-hashed-nbsvm-lr-v2"
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


def _used_columns(x: sp.csr_matrix) -> np.ndarray:
    """Columns with any non-zero entry: lbfgs cost grows with the column count, and most of
    the 2^20 buckets are empty, so fitting on the used ones is ~10x faster and identical."""
    return np.flatnonzero(np.diff(x.tocsc().indptr))


def balance_weights(y: np.ndarray, lang: np.ndarray) -> np.ndarray:
    """Sample weights that give every (language, class) cell the same total weight.

    Class weights balanced over the pooled data still leave each language's own prior in
    the model (German train tweets are 59 % neutral, English ones near-balanced), and the
    model learns it through language-typical words. Macro-F1 on sets with other priors
    (UMSAB is balanced by design) suffers; balancing per language removes that prior.
    """
    w = np.zeros(len(y), dtype=np.float64)
    for g in np.unique(lang):
        in_lang = lang == g
        present = np.unique(y[in_lang])
        for k in present:
            cell = in_lang & (y == k)
            w[cell] = in_lang.sum() / (len(present) * cell.sum())
    return w


def fit_heads(
    x: sp.csr_matrix,
    y: np.ndarray,
    c: float,
    nb_c: float,
    weight: np.ndarray,
    nb_alpha: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (buckets x 2*labels) and bias of the logistic-regression and NBSVM heads."""
    n_labels = len(LABELS)
    cols = _used_columns(x)
    xc = x[:, cols]
    weights = np.zeros((x.shape[1], 2 * n_labels), dtype=np.float32)
    bias = np.zeros(2 * n_labels, dtype=np.float32)
    lr = LogisticRegression(C=c, max_iter=3000, tol=1e-4)
    lr.fit(xc, y, sample_weight=weight)
    weights[cols, :n_labels] = lr.coef_.T
    bias[:n_labels] = lr.intercept_
    present = (xc != 0).astype(np.float64)
    for k in range(n_labels):
        p = nb_alpha + np.asarray(present[y == k].sum(axis=0)).ravel()
        q = nb_alpha + np.asarray(present[y != k].sum(axis=0)).ravel()
        r = np.log((p / p.sum()) / (q / q.sum()))
        target = (y == k).astype(int)
        w = weight.copy()  # class k against the rest with equal total weight
        w[target == 1] *= w[target == 0].sum() / w[target == 1].sum()
        nb = LogisticRegression(C=nb_c, max_iter=3000, tol=1e-4)
        nb.fit(xc @ sp.diags(r), target, sample_weight=w)
        weights[cols, n_labels + k] = nb.coef_[0] * r
        bias[n_labels + k] = nb.intercept_[0]
    return weights, bias


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The T minimising the log loss of ``p ** (1/T)`` renormalised (a grid is enough)."""
    logp = np.log(np.maximum(probs, 1e-12))
    best, best_loss = 1.0, np.inf
    for t in np.arange(0.4, 2.51, 0.02):
        z = logp / t
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -float(z[np.arange(len(y)), y].mean())
        if loss < best_loss:
            best, best_loss = float(t), loss
    return round(best, 2)


def cross_validate(
    x: sp.csr_matrix,
    y: np.ndarray,
    lang: np.ndarray,
    args: argparse.Namespace,
    docs: list[str],
) -> tuple[float, dict[str, float]]:
    """Out-of-fold mixed probabilities on the train files: temperature and per-language F1.

    Folds are grouped by normalised text: the UMSAB German train file samples SB-10k, so
    ~1,000 texts occur twice, and with plain stratified folds a copy of a test text sat in
    the training folds (v2 did this). That leak rewarded weak regularisation and put the
    German CV figure at 0.80 while the dev files said 0.66.
    """
    oof = np.zeros((len(y), len(LABELS)), dtype=np.float32)
    strata = np.char.add(lang.astype(str), y.astype(str))
    groups = np.unique(np.array(docs), return_inverse=True)[1]
    folds = StratifiedGroupKFold(args.cv, shuffle=True, random_state=0)
    for tr, te in folds.split(np.zeros(len(y)), strata, groups):
        w, b = fit_heads(x[tr], y[tr], args.C, args.nb_C, weights_for(y[tr], lang[tr], args))
        oof[te] = mix((x[te] @ w + b).astype(np.float32), 2, 1.0)
    scores = {
        f"cv_{g}": round(
            float(f1_score(y[lang == g], oof[lang == g].argmax(1), average="macro")), 4
        )
        for g in ("de", "en")
    }
    temperature = fit_temperature(oof, y)
    calibrated = mix(np.log(np.maximum(oof, 1e-12)), 1, temperature)
    onehot = np.eye(len(LABELS))[y]
    scores["cv_brier_raw"] = round(float(((oof - onehot) ** 2).sum(axis=1).mean()), 4)
    scores["cv_brier_calibrated"] = round(float(((calibrated - onehot) ** 2).sum(axis=1).mean()), 4)
    return temperature, scores


def weights_for(y: np.ndarray, lang: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    if args.balance == "language":
        return balance_weights(y, lang)
    if args.balance == "pooled":
        return balance_weights(y, np.zeros(len(y), dtype=int))
    return np.ones(len(y))


def fit(
    docs: list[str],
    labels: list[str],
    langs: list[str],
    spec: HashSpec,
    args: argparse.Namespace,
    lexicon: Lexicon | None,
    temperature: float,
) -> HashedLinearModel:
    x = matrix(docs, spec, lexicon)
    y = np.array([LABELS.index(lab) for lab in labels])
    weight = weights_for(y, np.array(langs), args)
    weights, bias = fit_heads(x, y, args.C, args.nb_C, weight)
    return HashedLinearModel(
        weights, bias, LABELS, spec, MODEL_ID, lexicon, heads=2, temperature=temperature
    )


def reliability(model: HashedLinearModel, dev: dict[str, tuple[list[str], list[str]]]) -> dict:
    """Brier score and a 5-bin reliability table of p(negative) over all dev texts."""
    texts = [t for tx, _ in dev.values() for t in tx]
    labels = [lab for _, lb in dev.values() for lab in lb]
    probs = model.probabilities([canonical(t) for t in texts])
    y = np.array([LABELS.index(lab) for lab in labels])
    onehot = np.eye(len(LABELS))[y]
    neg = probs[:, LABELS.index("negative")]
    is_neg = y == LABELS.index("negative")
    table = []
    for lo in (0.0, 0.2, 0.4, 0.6, 0.8):
        sel = (neg >= lo) & (neg < lo + 0.2 + (1e-9 if lo == 0.8 else 0))
        if sel.any():
            table.append(
                {
                    "bin": f"{lo:.1f}-{lo + 0.2:.1f}",
                    "n": int(sel.sum()),
                    "mean_p_neg": round(float(neg[sel].mean()), 3),
                    "share_neg": round(float(is_neg[sel].mean()), 3),
                }
            )
    return {
        "brier": round(float(((probs - onehot) ** 2).sum(axis=1).mean()), 4),
        "brier_neg": round(float(((neg - is_neg) ** 2).mean()), 4),
        "p_neg_reliability": table,
    }


def evaluate(model: HashedLinearModel, dev: dict[str, tuple[list[str], list[str]]]) -> dict:
    out: dict[str, float] = {}
    for name, (texts, labels) in dev.items():
        pred = [s.label for s in model.predict(texts)]
        out[name] = round(float(f1_score(labels, pred, average="macro", labels=LABELS)), 4)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bits", type=int, default=20)
    ap.add_argument("--C", type=float, default=2.0, help="logistic-regression head")
    ap.add_argument("--nb-C", dest="nb_C", type=float, default=1.0, help="NBSVM head")
    ap.add_argument("--char-max", type=int, default=5)
    ap.add_argument("--negation-scope", type=int, default=3)
    ap.add_argument(
        "--fold-umlauts", action="store_true", help="also count ä/ö/ü/ß words as ae/oe/ue/ss"
    )
    ap.add_argument(
        "--language-copies",
        action="store_true",
        help="per-language copies of word/lexicon/negation features (guessed language)",
    )
    ap.add_argument("--cv", type=int, default=3, help="folds for the temperature (0: T=1)")
    ap.add_argument(
        "--balance",
        choices=("language", "pooled", "none"),
        default="language",
        help="equal weight per (language, class) cell, per class, or none",
    )
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
    langs: list[str] = []
    dropped = 0
    for name, lang in TRAIN.items():
        texts, labs = read(name)
        for text, lab in zip(texts, labs, strict=True):
            key = canonical(text)
            if key in dev_keys:
                dropped += 1
                continue
            docs.append(key)
            labels.append(lab)
            langs.append(lang)
    print(f"train: {len(docs)} texts ({dropped} dropped: also in a dev/val file)", file=sys.stderr)
    seen = set(docs)
    for name in EVAL_UNSEEN_ONLY:
        texts, labs = dev[name]
        pairs = [(t, lab) for t, lab in zip(texts, labs, strict=True) if canonical(t) not in seen]
        print(f"{name}: evaluated on {len(pairs)} of {len(texts)} texts", file=sys.stderr)
        dev[name] = ([t for t, _ in pairs], [lab for _, lab in pairs])

    spec = HashSpec(
        bits=args.bits,
        char_max=args.char_max,
        negation_scope=args.negation_scope,
        fold_umlauts=args.fold_umlauts,
        language_copies=args.language_copies,
    )
    lexicon = None if args.no_lexicon else build_lexicon()
    if lexicon is not None:
        print(f"lexicon: {len(lexicon.polarity)} words", file=sys.stderr)
    t0 = time.perf_counter()
    temperature, cv_scores = 1.0, {}
    if args.cv > 1:
        x = matrix(docs, spec, lexicon)
        y = np.array([LABELS.index(lab) for lab in labels])
        temperature, cv_scores = cross_validate(x, y, np.array(langs), args, docs)
    model = fit(docs, labels, langs, spec, args, lexicon, temperature)
    scores = evaluate(model, dev)
    de = np.mean([v for k, v in scores.items() if DEV[k] == "de"])
    en = np.mean([v for k, v in scores.items() if DEV[k] == "en"])
    row: dict[str, object] = {
        "C": args.C,
        "nb_C": args.nb_C,
        "balance": args.balance,
        "negation_scope": args.negation_scope,
        "temperature": temperature,
        **cv_scores,
        "mean_de": round(float(de), 4),
        "mean_en": round(float(en), 4),
        **scores,
        **reliability(model, dev),
        "fit_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(row), flush=True)

    if args.save:
        meta: dict[str, object] = {
            "C": args.C,
            "nb_C": args.nb_C,
            "balance": args.balance,
            "train_files": list(TRAIN),
            "dev_figures": row,
        }
        if args.final:
            for name in DEV:
                texts, labs = dev[name]
                docs.extend(canonical(t) for t in texts)
                labels.extend(labs)
                langs.extend(DEV[name] for _ in texts)
            meta["train_files"] = list(TRAIN) + list(DEV)
            meta["final"] = True
            model = fit(docs, labels, langs, spec, args, lexicon, temperature)
        meta["n_train"] = len(docs)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        model.save(args.out, meta)
        print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
