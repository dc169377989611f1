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
    group_id: str = Field(default="stormwatch-sentiment", min_length=1)
    topics_file: str | None = Field(
        default=None, description="Extra crisis-topic patterns (YAML/JSON) added to the defaults."
    )

    @model_validator(mode="after")
    def _model_needed(self) -> SentimentSettings:
        if self.engine != "default" and not self.model_path:
            raise ValueError(
                f"SENTIMENT_MODEL_PATH is required with SENTIMENT_ENGINE={self.engine}"
            )
        return self
