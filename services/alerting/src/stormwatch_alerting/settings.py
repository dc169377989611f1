"""Alerting service settings (environment variables prefixed ``ALERTING_``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class AlertingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTING_", extra="ignore")

    sensitivity: Literal["calm", "normal", "eager"] = Field(
        default="normal", description="Detector preset: lead time versus false alarms."
    )
    group_id: str = Field(default="stormwatch-alerting", min_length=1)
    delivery_group_id: str = Field(default="stormwatch-delivery", min_length=1)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    changelog_flush_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="While mentions keep coming, write detector states to the changelog "
        "and commit the consumer offset every this many seconds (the work a crash redoes); "
        "once the input pauses for a tenth of a second they are written at once. Alerts "
        "never wait for it.",
    )
    max_future_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="A mention dated further ahead of this service's clock goes to the "
        "dead-letter topic: its target's detector would otherwise jump to that date.",
    )
    min_event_time: AwareDatetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC),
        description="A mention dated before this (with a UTC offset, e.g. "
        "2000-01-01T00:00:00Z) goes to the dead-letter topic: no social network holds posts "
        "that old, so such a date is a broken feed's (a missing field read as 1970), and a "
        "new target dated decades back would walk every bucket since then.",
    )
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server for alert emails.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0, le=300)
    email_from: str = Field(default="stormwatch@localhost")
    email_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated crisis-team addresses; empty disables email.",
    )
    crisis_room_url: str = Field(
        default="http://127.0.0.1:8080", description="Base URL of the crisis-room page."
    )

    @field_validator("email_to", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for addr in value:
            if "@" not in addr or " " in addr:
                raise ValueError(f"not an email address: {addr!r}")
        return value
