"""The compiled featurizer (``engines/featc.c``) against the numpy reference in ``hashing``.

The C route is only a faster way to the same numbers: every weight sum must equal the numpy
one bit for bit, or the shipped model's scores (and its calibration) would drift from what
was trained and evaluated. Compared here on real tweets, on random texts built to hit the
edge cases (empty texts, scripts beyond the BMP, negations and clause ends, long texts), and
on other specs with random weights, so options the shipped model does not use are covered
too.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stormwatch_sentiment.domain.text import canonical
from stormwatch_sentiment.engines import load_default, native
from stormwatch_sentiment.engines.default import HashedLinearModel
from stormwatch_sentiment.engines.hashing import HashSpec
from stormwatch_sentiment.engines.lexicon import CLAUSE_END, NEGATIONS, Lexicon

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "sentiment"
PURE = os.environ.get("STORMWATCH_PURE_PYTHON", "") not in ("", "0")


def _require_build() -> None:
    check = subprocess.run(
        [sys.executable, "tools/build_native.py", "--check"], cwd=ROOT, capture_output=True
    )
    assert check.returncode == 0, (
        "a compiled build is missing or older than its sources: run `make setup` "
        f"(needs a C compiler: {shutil.which(os.environ.get('CC', 'cc')) or 'none found'})"
    )
    if PURE:
        pytest.fail("STORMWATCH_PURE_PYTHON is set: these tests compare the compiled route")
    assert native.NATIVE, "the library of the current featc.c is built but could not be loaded"


def _tweets() -> list[str]:
    files = sorted(DATA.glob("*.tsv")) if DATA.is_dir() else []
    if not files:
        pytest.fail(f"no sentiment data under {DATA}: the equivalence needs real tweets")
    texts: list[str] = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as fh:
            texts += [row["text"] for row in csv.DictReader(fh, delimiter="\t")][:1_500]
    return texts


def _random_texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    words = sorted(NEGATIONS)[:20] + sorted(CLAUSE_END) + [
        "gut", "schlecht", "Pflege", "Straße", "für", "nicht", "#klinik", "@paula",
        "https://example.org/x", "😡", "𝔘𝔫𝔦", "привет", "日本", "a", "!!!", "...", "Ärger",
        # inflections the lexicon finds by their stem (five or more code points only)
        "schlechte", "schlechtesten", "ärgern", "guten", "gute", "gutes", "katastrophale",
        "schlechter", "schlechtere", "n't", "don’t", "keine", ";", ":",
    ]  # fmt: skip
    out = []
    for _ in range(n):
        shape = rng.random()
        if shape < 0.05:
            out.append("")
        elif shape < 0.1:
            out.append(" ".join(rng.choice(words) for _ in range(rng.randint(150, 400))))
        else:
            out.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))))
    return out


def _assert_bit_equal(model: HashedLinearModel, texts: list[str]) -> None:
    docs = [canonical(t) for t in texts]
    fast = native.hashed_sums(docs, model.spec, model.lexicon, model.weights)
    assert fast is not None, "the compiled route refused input the numpy route takes"
    slow = model.numpy_sums(docs)
    assert fast.shape == slow.shape
    differ = np.flatnonzero((fast.view(np.uint32) != slow.view(np.uint32)).any(axis=1))
    assert differ.size == 0, f"texts {differ[:5].tolist()} differ, e.g. {texts[differ[0]]!r}"


def test_setup_built_the_featurizer_for_this_source_and_it_is_in_use() -> None:
    _require_build()
    model = load_default()
    assert isinstance(model, HashedLinearModel)
    assert native.supports(model.spec)


def test_the_pure_python_switch_takes_the_numpy_route() -> None:
    env = {**os.environ, "STORMWATCH_PURE_PYTHON": "1"}
    code = "from stormwatch_sentiment.engines import native; print(native.NATIVE)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_real_tweets_get_the_same_sums_bit_for_bit() -> None:
    _require_build()
    model = load_default()
    assert isinstance(model, HashedLinearModel)
    texts = _tweets()
    assert len(texts) > 5_000
    for lo in range(0, len(texts), 512):
        _assert_bit_equal(model, texts[lo : lo + 512])


@pytest.mark.parametrize("seed, n", [(1, 1), (2, 2), (3, 64), (4, 512), (5, 700)])
def test_random_texts_get_the_same_sums_bit_for_bit(seed: int, n: int) -> None:
    _require_build()
    model = load_default()
    assert isinstance(model, HashedLinearModel)
    _assert_bit_equal(model, _random_texts(seed, n))


@pytest.mark.parametrize(
    "spec",
    [
        HashSpec(bits=12, char_min=2, char_max=5, word_bigrams=True, negation_scope=3),
        HashSpec(bits=16, char_min=3, char_max=6, word_bigrams=False, negation_scope=0),
        HashSpec(bits=14, char_min=1, char_max=4, negation_scope=1, char_within_words=True),
        HashSpec(bits=10, char_min=2, char_max=2, word_bigrams=True, negation_scope=5),
        HashSpec(bits=12, char_min=6, char_max=5),  # no character n-grams at all
    ],
    ids=["v2-shape", "no-bigrams", "within-words", "bigrams-only-chars", "no-chars"],
)
@pytest.mark.parametrize("with_lexicon", [True, False], ids=["lexicon", "no-lexicon"])
@pytest.mark.parametrize("heads", [2, 1], ids=["two-heads", "one-head"])  # C: 6 or any width
def test_other_specs_get_the_same_sums_bit_for_bit(
    spec: HashSpec, with_lexicon: bool, heads: int
) -> None:
    _require_build()
    rng = np.random.default_rng(spec.bits)
    width = 3 * heads
    weights = rng.normal(size=(1 << spec.bits, width)).astype(np.float32)
    lexicon = Lexicon(
        {"gut": 0.9, "schlecht": -0.7, "ärger": -0.2, "😡": -1.0, "katastrophal": -0.5, "e": 0.3}
    )
    model = HashedLinearModel(
        weights, np.zeros(width, np.float32), ["negative", "neutral", "positive"], spec,
        "test", lexicon if with_lexicon else None, heads=heads,
    )  # fmt: skip
    _assert_bit_equal(model, _random_texts(spec.bits, 300) + _tweets()[:300])


@pytest.mark.parametrize(
    "spec", [HashSpec(bits=10, fold_umlauts=True), HashSpec(bits=10, language_copies=True)]
)
def test_options_outside_the_c_route_fall_back_to_numpy(spec: HashSpec) -> None:
    weights = np.random.default_rng(0).normal(size=(1 << spec.bits, 3)).astype(np.float32)
    model = HashedLinearModel(weights, np.zeros(3, np.float32), ["a", "b", "c"], spec, "t")
    texts = ["Die Straße ist nicht gut", "für alle"]
    assert native.hashed_sums([canonical(t) for t in texts], spec, None, weights) is None
    expected = model.numpy_sums([canonical(t) for t in texts])
    assert np.array_equal(model.logits(texts), expected)


def test_a_text_that_splits_in_two_is_refused_and_scored_by_numpy() -> None:
    _require_build()
    model = load_default()
    assert isinstance(model, HashedLinearModel)
    docs = [" gut ", " nicht \n gut "]  # canonical() never emits "\n"; the C route says so
    assert native.hashed_sums(docs, model.spec, model.lexicon, model.weights) is None


def test_the_model_scores_through_the_compiled_route() -> None:
    _require_build()
    model = load_default()
    assert isinstance(model, HashedLinearModel)
    texts = _tweets()[:600]
    expected = np.concatenate(
        [model.numpy_sums([canonical(t) for t in texts[lo : lo + 512]]) for lo in (0, 512)]
    )
    assert np.array_equal(model.logits(texts), expected + model.bias)
