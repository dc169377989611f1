"""The shipped offline default model, its featuriser, text normalisation, language guess, CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from stormwatch_sentiment.cli import main as cli_main
from stormwatch_sentiment.domain.language import guess_language, language_supported
from stormwatch_sentiment.domain.model import LABELS
from stormwatch_sentiment.domain.text import MAX_CHARS, canonical, normalize, tokens
from stormwatch_sentiment.engines import DEFAULT_MODEL, load_default, load_engine
from stormwatch_sentiment.engines.default import HashedLinearModel, mix
from stormwatch_sentiment.engines.hashing import HashSpec, featurize
from stormwatch_sentiment.engines.lexicon import Lexicon


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@HendricRuesch hallo", "@user hallo"),
        ("Link http://t.co/xFrQ424peu da", "link  http  da"),
        ("i\\u2019m sorry", "i’m sorry"),
        ("&lt;3 &amp; so", "<3 & so"),
        ("Sooooo gut!!!!!!", "soo gut!!"),
        ("bad \udcff", "bad ?"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_tokenised_and_untokenised_spellings_meet() -> None:
    # SB-10k puts spaces around punctuation; live tweets do not.
    assert canonical("Toll , die 1. DVD :)") == canonical("Toll, die 1. DVD :)")
    assert tokens("so ein Mist :( <3") == ["so", "ein", "mist", ":(", "<3"]


def test_long_text_is_cut() -> None:
    assert len(normalize("x" * 100_000)) <= MAX_CHARS


def test_features_do_not_leak_between_texts() -> None:
    spec = HashSpec(bits=16)
    a, b = "Die Hygiene ist katastrophal", "Tolle Arbeit"
    joint = featurize([a, b], spec)
    alone = featurize([b], spec)
    assert sorted(joint.bucket[joint.doc == 1].tolist()) == sorted(alone.bucket.tolist())


def test_save_load_roundtrip_with_lexicon(tmp_path: Path) -> None:
    spec = HashSpec(bits=12)
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((1 << 12, 3)).astype(np.float32)
    lex = Lexicon({"gut": 0.8, "schlecht": -0.7})
    model = HashedLinearModel(weights, np.zeros(3, np.float32), LABELS, spec, "t", lex)
    model.save(tmp_path / "m.npz")
    loaded = HashedLinearModel.load(tmp_path / "m.npz")
    texts = ["gut gemacht", "nicht schlecht", ""]
    np.testing.assert_allclose(model.logits(texts), loaded.logits(texts), atol=5e-2)
    assert loaded.lexicon is not None and loaded.lexicon.lookup("schlechte") == pytest.approx(
        -0.7, abs=1e-3
    )


def test_negation_flips_the_lexicon_feature() -> None:
    lex = Lexicon({"gut": 0.8})
    _, plain = lex.codes([canonical("das ist gut")])
    _, negated = lex.codes([canonical("das ist nicht gut")])
    assert plain.tolist() != negated.tolist()


@pytest.mark.parametrize(
    ("text", "scoped"),
    [
        ("das ist gut", 0),
        ("das ist nicht gut", 1),  # gut
        ("not good at all really", 3),  # good at all; "really" is past the scope
        ("nicht gut , aber ok", 1),  # the comma ends the scope
        ("nie wieder . toll", 1),  # wieder
        ("kein", 0),  # nothing follows
        ("i don't like it", 2),
    ],
)
def test_negation_scope_marks_the_next_words(text: str, scoped: int) -> None:
    feats = featurize([text], HashSpec(bits=16, negation_scope=3))
    assert int((feats.block == 3).sum()) == scoped
    off = featurize([text], HashSpec(bits=16, negation_scope=0))
    assert int((off.block == 3).sum()) == 0


def _word_buckets(text: str, spec: HashSpec) -> set[int]:
    feats = featurize([text], spec)
    return set(feats.bucket[feats.block == 0].tolist())


@pytest.mark.parametrize(
    ("umlaut", "ascii_spelling"),
    [("für", "fuer"), ("Straße", "Strasse"), ("schön", "schoen"), ("Ärzte", "Aerzte")],
)
def test_umlaut_folding_lets_both_spellings_share_a_feature(
    umlaut: str, ascii_spelling: str
) -> None:
    on = HashSpec(bits=20, fold_umlauts=True)
    off = HashSpec(bits=20)
    assert _word_buckets(ascii_spelling, on) <= _word_buckets(umlaut, on)
    assert not _word_buckets(ascii_spelling, off) & _word_buckets(umlaut, off)
    # Texts without umlauts get exactly the features they had before.
    assert _word_buckets(ascii_spelling, on) == _word_buckets(ascii_spelling, off)


def test_char_ngrams_within_words_never_span_a_space() -> None:
    on = HashSpec(bits=20, char_within_words=True)

    def chars(text: str, spec: HashSpec) -> set[int]:
        feats = featurize([text], spec)
        return set(feats.bucket[feats.block == 1].tolist())

    # Each word keeps its own n-grams (with the boundary spaces), none joins two words.
    assert chars("kein arzt", on) == chars("kein", on) | chars("arzt", on)
    assert chars("kein arzt", HashSpec(bits=20)) > chars("kein", on) | chars("arzt", on)
    assert chars("arzt", on) == chars("arzt", HashSpec(bits=20))  # one word: unchanged


@pytest.mark.parametrize(
    ("text", "copied"),
    [
        ("das ist nicht gut und ich bin sauer", True),  # guessed German
        ("this is not good and i am angry", True),  # guessed English
        ("😡😡😡", False),  # no language: shared features only
    ],
)
def test_language_copies_follow_the_guesser(text: str, copied: bool) -> None:
    on = featurize([text], HashSpec(bits=20, negation_scope=3, language_copies=True))
    off = featurize([text], HashSpec(bits=20, negation_scope=3))
    assert bool((on.block >= 4).any()) is copied
    assert sorted(on.bucket[on.block < 4].tolist()) == sorted(off.bucket.tolist())
    # Characters are never copied; every copy keeps its original's scale.
    assert not (on.block == 5).any()
    for b in (0, 3):
        assert (on.block == b + 4).sum() in (0, (on.block == b).sum())


def test_mix_averages_head_probabilities_then_tempers() -> None:
    logits = np.array([[2.0, 0.0, 0.0, 0.0, 0.0, 2.0]], dtype=np.float32)
    p = mix(logits, 2, 1.0)[0]
    e = np.exp(2.0) / (np.exp(2.0) + 2)
    np.testing.assert_allclose(p, [(e + (1 - e) / 2) / 2, (1 - e) / 2, (e + (1 - e) / 2) / 2], 1e-5)
    flat = mix(logits, 2, 2.0)[0]
    sharp = mix(logits, 2, 0.5)[0]
    assert flat.sum() == pytest.approx(1.0) and sharp.sum() == pytest.approx(1.0)
    assert flat.max() - flat.min() < p.max() - p.min() < sharp.max() - sharp.min()


def test_format_1_file_still_loads(tmp_path: Path) -> None:
    # A model saved before heads and temperature existed must load as one head, T = 1.
    spec = HashSpec(bits=10)
    w = np.zeros((1 << 10, 3), np.float16)
    w[5] = [1, 0, -1]
    header = {
        "format": "stormwatch-hashed-logreg/1",
        "model_id": "old",
        "labels": list(LABELS),
        "spec": {"bits": 10, "char_min": 2, "char_max": 5, "word_bigrams": True},
    }
    np.savez_compressed(
        tmp_path / "old.npz",
        header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        rows=np.array([5], np.int32),
        values=w[[5]],
        bias=np.zeros(3, np.float32),
    )
    model = HashedLinearModel.load(tmp_path / "old.npz")
    assert (model.heads, model.temperature, model.spec) == (1, 1.0, spec)
    assert model.predict(["x"])[0].label in LABELS


def test_shipped_model_is_an_ensemble_with_a_temperature() -> None:
    model = load_default()
    assert isinstance(model, HashedLinearModel)
    assert model.heads == 2 and 0.3 < model.temperature < 3.0
    assert model.spec.negation_scope > 0 and model.model_id.startswith("default-")


def test_default_loads_fast_and_is_cached() -> None:
    load_default.cache_clear()
    t0 = time.perf_counter()
    model = load_default()
    assert time.perf_counter() - t0 < 1.0
    assert load_default() is model
    assert DEFAULT_MODEL.stat().st_size < 10_000_000
    assert load_engine("default", None, 1) is model


OBVIOUS = [
    ("Die Hygiene auf Station ist katastrophal.", "negative"),
    ("Das Personal war respektlos und überfordert. Nie wieder!", "negative"),
    ("Ich bin so wütend. Meinem Vater wurde das falsche Medikament gegeben.", "negative"),
    ("Staff were rude and overwhelmed. Shame on the hospital.", "negative"),
    ("Tolle Arbeit, danke an das ganze Team!", "positive"),
    ("Ich bin so dankbar für die Pflege. Ich fühlte mich gut aufgehoben.", "positive"),
    ("Great care at the hospital, thank you! Amazing team.", "positive"),
]


@pytest.mark.parametrize(("text", "expected"), OBVIOUS)
def test_obvious_hospital_texts(text: str, expected: str) -> None:
    assert load_default().predict([text])[0].label == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "😡😡😡", "🙂", "x" * 100_000, "bad \udcff\ud800 utf", "\x00", "١٢٣ مرحبا"]
)
def test_bad_input_is_scored(text: str) -> None:
    (s,) = load_default().predict([text])
    assert s.label in LABELS
    assert sum(s.scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_batch_equals_single_and_keeps_order() -> None:
    model = load_default()
    texts = [t for t, _ in OBVIOUS] * 3 + [""]
    batch = model.predict(texts)
    assert len(batch) == len(texts)
    for text, s in zip(texts, batch, strict=True):
        assert s.scores == pytest.approx(model.predict([text])[0].scores, abs=1e-5)


def test_throughput_floor() -> None:
    # The goal is >= 5,000 texts/s (see bench); this floor only catches gross regressions.
    model = load_default()
    texts = [t for t, _ in OBVIOUS] * 300
    t0 = time.perf_counter()
    model.predict(texts)
    assert len(texts) / (time.perf_counter() - t0) > 1_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Die Pflegekräfte sind völlig am Limit, das ist gefährlich.", "de"),
        ("Tolle Arbeit", "de"),
        ("Waited seven hours in the ER and nobody cared.", "en"),
        ("Merci beaucoup pour tout, c'est très bien", "fr"),
        ("Gracias por todo, el equipo es muy bueno", "es"),
        ("Спасибо большое", "ru"),
        ("ありがとうございます", "ja"),
        ("😡😡😡", "und"),
        ("", "und"),
        ("12345", "und"),
    ],
)
def test_guess_language(text: str, expected: str) -> None:
    assert guess_language(text) == expected


@pytest.mark.parametrize(
    ("lang", "ok"), [("de", True), ("en-GB", True), ("fr", False), ("und", False), (None, False)]
)
def test_language_supported(lang: str | None, ok: bool) -> None:
    assert language_supported(lang) is ok


def test_cli_score_same_order_and_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTIMENT_ENGINE", raising=False)
    monkeypatch.delenv("SENTIMENT_MODEL_PATH", raising=False)
    src = tmp_path / "in.txt"
    lines = [t for t, _ in OBVIOUS] + ["", "😡", "Datenleck im Klinikum"]
    src.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe broken\n")
    out = tmp_path / "out.jsonl"
    assert cli_main(["score", "--input", str(src), "--output", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(lines) + 1
    for (_, expected), row in zip(OBVIOUS, rows, strict=False):
        assert row["label"] == expected
        assert set(row["scores"]) == set(LABELS)
    assert rows[len(OBVIOUS) + 2]["topics"] == ["data_leak"]


def test_cli_reports_a_misconfigured_engine(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    code = cli_main(["score", "--engine", "onnx", "--input", str(src), "--output", "-"])
    assert code == 2
    assert "SENTIMENT_MODEL_PATH" in capsys.readouterr().err
