"""Listener settings (environment variables prefixed ``LISTENER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ListenerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LISTENER_", extra="ignore")

    source: Literal["replay"] = Field(
        default="replay", description="Where mentions come from; live sources plug in here."
    )
    replay_dir: Path | None = Field(
        default=None, description="Scenario folder (mentions.jsonl, targets.json) to replay."
    )
    replay_speed: str = Field(
        default="max",
        description="'max' (as fast as Kafka takes it) or a factor, e.g. 60 = one hour a minute.",
    )
    targets_file: Path | None = Field(
        default=None, description="Watch list (targets.json); default: the replay folder's."
    )
    drill: bool = Field(default=False, description="Mark every event as a drill (ÜBUNG).")
    exit_at_end: bool = Field(
        default=True, description="Stop the process when a replay has been published."
    )

    @field_validator("replay_speed")
    @classmethod
    def _speed(cls, value: str) -> str:
        if value != "max":
            try:
                if float(value) <= 0:
                    raise ValueError
            except ValueError:
                raise ValueError("must be 'max' or a positive number such as 60") from None
        return value

    @model_validator(mode="after")
    def _replay_needs_dir(self) -> ListenerSettings:
        if self.source == "replay":
            if self.replay_dir is None:
                raise ValueError("LISTENER_REPLAY_DIR must name a scenario folder for replay")
            if not (self.replay_dir / "mentions.jsonl").is_file():
                raise ValueError(f"LISTENER_REPLAY_DIR: no mentions.jsonl in {self.replay_dir}")
        return self

    @property
    def speed_factor(self) -> float | None:
        return None if self.replay_speed == "max" else float(self.replay_speed)

    @property
    def watch_list(self) -> Path:
        if self.targets_file is not None:
            return self.targets_file
        assert self.replay_dir is not None
        return self.replay_dir / "targets.json"
