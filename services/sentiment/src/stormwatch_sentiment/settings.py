"""Sentiment service settings (environment variables prefixed ``SENTIMENT_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SentimentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMENT_", extra="ignore")

    engine: Literal["default", "onnx", "pipeline"] = Field(
        default="default",
        description="default = offline model shipped in the repo; onnx = int8 transformer; "
        "pipeline = plain transformers/torch.",
    )
    model_path: str | None = Field(
        default=None, description="Model directory (onnx) or hub id/path (pipeline)."
    )
    threads: int = Field(default=1, ge=1, le=64, description="Inference threads per process.")
    batch_size: int = Field(default=512, ge=1, le=10_000, description="Max mentions per batch.")
    batch_timeout_ms: int = Field(
        default=20, ge=0, le=10_000, description="Max wait to fill a batch."
    )
    scoring_thread: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Score batches in a worker thread (always) or on the event loop (never). "
        "auto: a thread for the transformer engines, whose batches take seconds and would "
        "hold up the consumer's heartbeats and the health endpoints; the event loop for the "
        "default model (a batch of 512 in ~15 ms), where handing each batch to a thread cost "
        "~10 us of CPU per mention in the pipeline bench (2026-12-03).",
    )
    group_id: str = Field(default="stormwatch-sentiment", min_length=1)
    topics_file: str | None = Field(
        default=None, description="Extra crisis-topic patterns (YAML/JSON) added to the defaults."
    )

    @property
    def score_in_thread(self) -> bool:
        if self.scoring_thread == "auto":
            return self.engine != "default"
        return self.scoring_thread == "always"

    @model_validator(mode="after")
    def _model_needed(self) -> SentimentSettings:
        if self.engine != "default" and not self.model_path:
            raise ValueError(
                f"SENTIMENT_MODEL_PATH is required with SENTIMENT_ENGINE={self.engine}"
            )
        return self
