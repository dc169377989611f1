"""Engine selection: one call returns a ``SentimentModel`` for the configured kind.

The offline default is always available; the transformer engines are imported lazily so that
neither onnxruntime start-up nor a missing torch costs anything when they are not used.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from stormwatch_sentiment.domain.model import SentimentModel

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default" / "model.npz"
KINDS = ("default", "onnx", "pipeline")


@functools.cache
def load_default() -> SentimentModel:
    """The shipped hashed-n-gram model (cached: loading it twice would only waste memory)."""
    from stormwatch_sentiment.engines.default import HashedLinearModel

    return HashedLinearModel.load(DEFAULT_MODEL)


def load_engine(kind: str, model_path: str | None, threads: int) -> SentimentModel:
    """Build the engine ``kind`` (``default``, ``onnx`` or ``pipeline``).

    ``model_path`` is the model directory for the transformer engines (ignored by
    ``default``, where an explicit path loads another ``.npz`` of the same format).
    """
    kind = (kind or "default").strip().lower()
    if kind == "default":
        if model_path:
            from stormwatch_sentiment.engines.default import HashedLinearModel

            return HashedLinearModel.load(Path(model_path))
        return load_default()
    if kind not in KINDS:
        raise ValueError(f"unknown sentiment engine {kind!r}; choose one of {', '.join(KINDS)}")
    if not model_path:
        raise ValueError(f"engine {kind!r} needs a model directory (SENTIMENT_MODEL_PATH)")
    if kind == "onnx":
        from stormwatch_sentiment.engines.onnx_engine import OnnxSentimentModel

        return OnnxSentimentModel(Path(model_path), threads=threads)
    from stormwatch_sentiment.engines.pipeline_engine import PipelineSentimentModel

    return PipelineSentimentModel(model_path, threads=threads)


def load_from_env(threads: int | None = None) -> SentimentModel:
    """``SENTIMENT_ENGINE`` / ``SENTIMENT_MODEL_PATH`` / ``SENTIMENT_THREADS``; default if unset."""
    kind = os.environ.get("SENTIMENT_ENGINE", "default") or "default"
    path = os.environ.get("SENTIMENT_MODEL_PATH") or None
    if threads is None:
        threads = int(os.environ.get("SENTIMENT_THREADS", "0") or 0)
    return load_engine(kind, path, threads)
