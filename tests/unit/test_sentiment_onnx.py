"""ONNX engine on a tiny BERT-shaped model built here (no hub download, no torch)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from stormwatch_sentiment.domain.model import LABELS
from stormwatch_sentiment.engines import load_engine
from stormwatch_sentiment.engines.export import plan_export, write_metadata
from stormwatch_sentiment.engines.onnx_engine import (
    OnnxSentimentModel,
    canonical_label,
    length_batches,
    read_labels,
)
from stormwatch_sentiment.engines.preprocess import (
    german_sentiment_bert,
    preprocess_name_for_model_id,
    preprocessor_for,
    twitter,
)
from stormwatch_sentiment.engines.synthetic import TINY, build_model_dir

WORDS = [f"w{i}" for i in range(120)]
STANDARD = {0: "negative", 1: "neutral", 2: "positive"}
PERMUTED = {0: "positive", 1: "negative", 2: "neutral"}


def sample_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60))) for _ in range(n)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("tiny"), TINY, WORDS, STANDARD, seed=3)


@pytest.fixture(scope="module")
def permuted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("perm"), TINY, WORDS, PERMUTED, seed=3)


def test_model_directory_is_complete_and_loadable_by_kind(model_dir: Path) -> None:
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "tokenizer.json", "model.onnx", "model.int8.onnx"} <= names
    model = load_engine("onnx", str(model_dir), threads=1)
    out = model.predict(["w1 w2 w3", "w4"])
    assert len(out) == 2
    for s in out:
        assert s.label in LABELS and set(s.scores) == set(LABELS)
        assert abs(sum(s.scores.values()) - 1.0) < 1e-5
        assert s.label == max(s.scores, key=s.scores.__getitem__)


def test_int8_without_skip_layer_norm_fusion_gives_the_same_probabilities(
    model_dir: Path,
) -> None:
    # The engine turns one ORT fusion off for speed; that must not change what it computes.
    texts = sample_texts(200, seed=2)
    lean = OnnxSentimentModel(model_dir, threads=1, variant="int8")
    fused = OnnxSentimentModel(model_dir, threads=1, variant="int8", disabled_optimizers=())
    a, b = lean.probabilities(texts), fused.probabilities(texts)
    # Not bit-identical: activations are quantised at run time from slightly different floats.
    assert np.abs(a - b).mean() < 0.005
    top2 = np.sort(b, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) >= 0.02
    assert (a.argmax(1) == b.argmax(1))[decided].mean() >= 0.99


def test_int8_and_fp32_agree_on_labels(model_dir: Path) -> None:
    texts = sample_texts(600, seed=1)
    int8 = OnnxSentimentModel(model_dir, threads=1, variant="int8").probabilities(texts)
    fp32 = OnnxSentimentModel(model_dir, threads=1, variant="fp32").probabilities(texts)
    agree = int8.argmax(1) == fp32.argmax(1)
    # The random-weight tiny model has many near-ties, unlike a trained one; where fp32 makes
    # a decision (top-2 margin >= 0.02) labels must agree on >= 99 %.
    top2 = np.sort(fp32, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) >= 0.02
    assert decided.mean() > 0.8
    assert agree[decided].mean() >= 0.99
    assert agree.mean() >= 0.97
    assert len(set(fp32.argmax(1).tolist())) >= 2, "labels must vary, or agreement is trivial"
    assert np.abs(int8 - fp32).mean() < 0.05


def test_label_order_comes_from_id2label(model_dir: Path, permuted_dir: Path) -> None:
    assert read_labels(permuted_dir) == ("positive", "negative", "neutral")
    texts = sample_texts(50, seed=2)
    std = OnnxSentimentModel(model_dir, threads=1, variant="fp32").predict(texts)
    perm = OnnxSentimentModel(permuted_dir, threads=1, variant="fp32").predict(texts)
    for a, b in zip(std, perm, strict=True):
        # Same weights: output column j is STANDARD[j] in one model and PERMUTED[j] in the other.
        for j in range(3):
            assert a.scores[STANDARD[j]] == pytest.approx(b.scores[PERMUTED[j]], abs=1e-6)


def test_same_order_and_count_despite_length_sorting(model_dir: Path) -> None:
    texts = sample_texts(97, seed=4)
    model = OnnxSentimentModel(model_dir, threads=1, variant="fp32", batch_size=8)
    batched = model.probabilities(texts)
    single = np.vstack([model.probabilities([t]) for t in texts[:10]])
    np.testing.assert_allclose(batched[:10], single, atol=1e-5)
    assert batched.shape == (97, 3)


@pytest.mark.parametrize(
    "text", ["", " ", "😡😡😡", "w1 " * 50_000, "bad \udcff surrogate", "\x00\x01", "Ωμέγα"]
)
def test_bad_input_is_scored(model_dir: Path, text: str) -> None:
    model = OnnxSentimentModel(model_dir, threads=1)
    (s,) = model.predict([text])
    assert s.label in LABELS
    assert model.predict([]) == []


def test_unmappable_label_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"0": "LABEL_0"}}))
    with pytest.raises(ValueError, match="LABEL_0"):
        read_labels(tmp_path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Negative", "negative"), ("NEU", "neutral"), (" positive ", "positive"), ("pos", "positive")],
)
def test_canonical_label(name: str, expected: str) -> None:
    assert canonical_label(name) == expected


@pytest.mark.parametrize(
    ("lengths", "size", "expected"),
    [([5, 1, 3, 2], 2, [[1, 3], [2, 0]]), ([], 4, []), ([2, 2, 2], 2, [[0, 1], [2]])],
)
def test_length_batches(lengths: list[int], size: int, expected: list[list[int]]) -> None:
    assert [b.tolist() for b in length_batches(lengths, size)] == expected


def test_missing_graph_names_the_export_command(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"id2label": STANDARD}))
    with pytest.raises(FileNotFoundError, match="model export"):
        OnnxSentimentModel(tmp_path)


def test_unknown_engine_and_missing_path() -> None:
    with pytest.raises(ValueError, match="unknown"):
        load_engine("bogus", None, 1)
    with pytest.raises(ValueError, match="SENTIMENT_MODEL_PATH"):
        load_engine("onnx", None, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@Klinik super http://t.co/x", "@user super http"),
        ("kein link", "kein link"),
    ],
)
def test_twitter_cleaning(text: str, expected: str) -> None:
    assert twitter(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@Klinik Das war 1 SUPER Tag!!! https://x.y", "das war eins super tag"),
        ("Größe 3", "größe drei"),
    ],
)
def test_german_sentiment_bert_cleaning(text: str, expected: str) -> None:
    assert german_sentiment_bert(text) == expected


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("cardiffnlp/twitter-xlm-roberta-base-sentiment", "twitter"),
        ("oliverguhr/german-sentiment-bert", "german-sentiment-bert"),
        ("someone/other-model", "none"),
    ],
)
def test_export_plan_and_metadata(tmp_path: Path, model_id: str, expected: str) -> None:
    plan = plan_export(model_id, tmp_path / "out")
    assert plan.fp32.name == "model.onnx" and plan.int8.name == "model.int8.onnx"
    assert plan.preprocess == preprocess_name_for_model_id(model_id) == expected
    meta = write_metadata(plan)
    assert json.loads(meta.read_text())["model_id"] == model_id
    assert preprocessor_for(plan.out_dir).__name__ == expected.replace("-", "_").replace(
        "none", "plain"
    )


def test_export_plan_rejects_a_file_as_output(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ValueError):
        plan_export("cardiffnlp/twitter-xlm-roberta-base-sentiment", target)
