"""Listener settings (environment variables prefixed ``LISTENER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LIVE_SOURCES = ("x", "mastodon", "bluesky", "rss")


class ListenerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LISTENER_", extra="ignore")

    source: Literal["replay", "x", "mastodon", "bluesky", "rss"] = Field(
        default="replay", description="Where mentions come from: a drill replay or one network."
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
    watchlist: Path | None = Field(
        default=None,
        description="Live watch list (YAML, or a drill targets.json) for the live sources.",
    )
    state_path: Path = Field(
        default=Path("var/listener/state.sqlite"),
        description="SQLite file with resume cursors, the seen-set and read budgets.",
    )
    drill: bool = Field(default=False, description="Mark every event as a drill (ÜBUNG).")
    exit_at_end: bool = Field(
        default=True, description="Stop the process when a replay has been published."
    )

    # X
    x_bearer_token: SecretStr = Field(default=SecretStr(""), description="X API bearer token.")
    x_base_url: str = Field(default="https://api.x.com", description="X API base URL.")
    x_monthly_read_budget: int = Field(
        default=10_000, ge=0, description="Posts X may bill per calendar month (0 = no limit)."
    )
    x_no_data_timeout_s: float = Field(default=20.0, gt=0, le=600)

    # Mastodon
    mastodon_base_url: str = Field(default="", description="Server, e.g. https://mastodon.social")
    mastodon_access_token: SecretStr = Field(
        default=SecretStr(""), description="User access token (streams need one since 4.2)."
    )
    mastodon_public: bool = Field(
        default=False, description="Also stream the public timeline and match keywords locally."
    )

    # Bluesky
    bluesky_jetstream_url: str = Field(default="wss://jetstream2.us-east.bsky.network")
    bluesky_appview_url: str = Field(default="https://public.api.bsky.app")

    # RSS
    rss_interval_s: float = Field(
        default=900.0, ge=60.0, description="Seconds between polls of each feed (polite)."
    )
    rss_feeds: str = Field(
        default="", description="Extra feed URLs (comma-separated) for the first organisation."
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

    @field_validator("x_base_url", "mastodon_base_url", "bluesky_appview_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("bluesky_jetstream_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _source_needs(self) -> ListenerSettings:
        if self.source == "replay":
            if self.replay_dir is None:
                raise ValueError("LISTENER_REPLAY_DIR must name a scenario folder for replay")
            if not (self.replay_dir / "mentions.jsonl").is_file():
                raise ValueError(f"LISTENER_REPLAY_DIR: no mentions.jsonl in {self.replay_dir}")
            return self
        if self.watchlist is None:
            raise ValueError(f"LISTENER_WATCHLIST must name the watch list for {self.source}")
        if not self.watchlist.is_file():
            raise ValueError(f"LISTENER_WATCHLIST: {self.watchlist} not found")
        if self.source == "x" and not self.x_bearer_token.get_secret_value():
            raise ValueError("LISTENER_X_BEARER_TOKEN is required for LISTENER_SOURCE=x")
        if self.source == "mastodon":
            if not self.mastodon_base_url:
                raise ValueError("LISTENER_MASTODON_BASE_URL is required for mastodon")
            if not self.mastodon_access_token.get_secret_value():
                raise ValueError(
                    "LISTENER_MASTODON_ACCESS_TOKEN is required: hashtag and public streams "
                    "need a user token since Mastodon 4.2"
                )
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
