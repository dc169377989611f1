"""The one interface every sentiment engine implements.

Engines differ (offline default, ONNX int8 transformer, torch pipeline) but the service,
the replay and the benchmarks only see ``SentimentModel``, so an engine can be swapped by
configuration without touching the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: str
    """One of ``LABELS``."""
    scores: dict[str, float]
    """Probability per label in ``LABELS``; sums to 1."""


class SentimentModel(Protocol):
    model_id: str

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        """Score a batch; same order and count as ``texts``. Must not raise on odd text."""
        ...
