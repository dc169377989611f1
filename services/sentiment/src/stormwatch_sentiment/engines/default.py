"""The offline default engine: a multinomial logistic regression over hashed n-grams.

It ships inside the package (a compressed ``.npz`` of a few MB), loads in milliseconds and
needs nothing but numpy, so a fresh clone scores sentiment without any download. The
transformer engines are more accurate; this one is the floor that always works.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stormwatch_sentiment.domain.model import Sentiment
from stormwatch_sentiment.engines.hashing import HashSpec, featurize
from stormwatch_sentiment.engines.lexicon import Lexicon

FORMAT = "stormwatch-hashed-logreg/1"
BATCH = 512


class HashedLinearModel:
    """Inference in numpy: gather the weight row of every n-gram, sum per text, softmax."""

    def __init__(
        self,
        weights: npt.NDArray[np.float32],
        bias: npt.NDArray[np.float32],
        labels: Sequence[str],
        spec: HashSpec,
        model_id: str,
        lexicon: Lexicon | None = None,
    ) -> None:
        if weights.shape != (1 << spec.bits, len(labels)):
            raise ValueError(f"weights shape {weights.shape} does not match spec and labels")
        self.weights = weights
        self.bias = bias.astype(np.float32)
        self.labels = tuple(labels)
        self.spec = spec
        self.model_id = model_id
        self.lexicon = lexicon

    # ---- persistence -------------------------------------------------------------------
    def save(self, path: Path, meta: dict[str, object] | None = None) -> None:
        """Store only non-zero rows as float16: buckets never seen in training stay zero."""
        rows = np.flatnonzero(np.any(self.weights != 0, axis=1)).astype(np.int32)
        header = {
            "format": FORMAT,
            "model_id": self.model_id,
            "labels": list(self.labels),
            "spec": {
                "bits": self.spec.bits,
                "char_min": self.spec.char_min,
                "char_max": self.spec.char_max,
                "word_bigrams": self.spec.word_bigrams,
            },
            "meta": meta or {},
        }
        extra = {}
        if self.lexicon is not None:
            extra["lex_words"], extra["lex_values"] = self.lexicon.to_arrays()
        np.savez_compressed(
            path,
            **extra,
            header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
            rows=rows,
            values=self.weights[rows].astype(np.float16),
            bias=self.bias,
        )

    @classmethod
    def load(cls, path: Path) -> HashedLinearModel:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode("utf-8"))
            if header.get("format") != FORMAT:
                raise ValueError(f"{path}: unknown model format {header.get('format')!r}")
            spec = HashSpec(**header["spec"])
            labels = header["labels"]
            weights = np.zeros((1 << spec.bits, len(labels)), dtype=np.float32)
            weights[data["rows"]] = data["values"].astype(np.float32)
            bias = data["bias"].astype(np.float32)
            lexicon = None
            if "lex_words" in data.files:
                lexicon = Lexicon.from_arrays(data["lex_words"], data["lex_values"])
        return cls(weights, bias, labels, spec, header["model_id"], lexicon)

    # ---- inference ---------------------------------------------------------------------
    def logits(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for lo in range(0, len(texts), BATCH):
            chunk = texts[lo : lo + BATCH]
            feats = featurize(chunk, self.spec, self.lexicon)
            values = feats.values()
            gathered = self.weights[feats.bucket]
            for c in range(len(self.labels)):
                out[lo : lo + len(chunk), c] = np.bincount(
                    feats.doc, weights=gathered[:, c] * values, minlength=len(chunk)
                )
        return out + self.bias

    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        z = self.logits(texts)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        probs = self.probabilities([t if isinstance(t, str) else "" for t in texts])
        best = probs.argmax(axis=1)
        labels = self.labels
        return [
            Sentiment(
                label=labels[int(b)],
                scores={lab: float(p) for lab, p in zip(labels, row, strict=True)},
            )
            for b, row in zip(best, probs.tolist(), strict=True)
        ]
