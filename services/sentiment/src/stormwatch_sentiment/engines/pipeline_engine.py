"""The plain transformers pipeline (torch, fp32): the reference the ONNX engine is checked
against, and an option for users who already run torch. Needs the ``torch`` extra.

Same directory layout, label mapping (``id2label``) and text cleaning as the ONNX engine, so
the two give comparable outputs on the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stormwatch_sentiment.domain.model import Sentiment
from stormwatch_sentiment.engines.onnx_engine import MAX_LENGTH, read_labels, to_sentiments
from stormwatch_sentiment.engines.preprocess import preprocessor_for


class PipelineSentimentModel:
    def __init__(self, model_path: str | Path, threads: int = 0, batch_size: int = 32) -> None:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the pipeline engine needs torch: uv sync --extra torch (or use "
                "SENTIMENT_ENGINE=onnx / default)"
            ) from exc
        from transformers import pipeline

        if threads > 0:
            torch.set_num_threads(threads)
        self.model_dir = Path(model_path)
        self.labels = read_labels(self.model_dir)
        self.preprocess = preprocessor_for(self.model_dir)
        self.batch_size = batch_size
        self.pipe: Any = pipeline(
            "text-classification",
            model=str(self.model_dir),
            tokenizer=str(self.model_dir),
            device=-1,
            top_k=None,
        )
        self.model_id = f"pipeline:{self.model_dir.name}"

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        if not texts:
            return []
        cleaned = [self.preprocess(t) for t in texts]
        raw = self.pipe(cleaned, batch_size=self.batch_size, truncation=True, max_length=MAX_LENGTH)
        id_names = [str(n) for n in self.pipe.model.config.id2label.values()]
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for row, result in enumerate(raw):
            for item in result:
                probs[row, id_names.index(str(item["label"]))] = float(item["score"])
        return to_sentiments(probs, self.labels)
