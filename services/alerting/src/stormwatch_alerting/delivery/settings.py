"""Delivery settings (environment variables prefixed ``ALERTING_``).

Secrets (provider tokens, the ack-link key) come from the environment, never from the
routing file: the routing file is reviewed and versioned like code, secrets are not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split(value: object) -> object:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class DeliverySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTING_", extra="ignore")

    routing_file: Path | None = Field(
        default=None,
        description="YAML routing (people, rotations, routes). Unset: log + email to "
        "ALERTING_EMAIL_TO, as before.",
    )
    state_db: Path | None = Field(
        default=None,
        description="SQLite file for open alerts, escalations, dedup keys, silences and the "
        "audit log. Unset: in memory (a restart forgets; fine for tests only).",
    )
    ack_secret: SecretStr | None = Field(
        default=None, description="HMAC key for one-click acknowledge links (32+ random bytes)."
    )
    ack_link_ttl_minutes: int = Field(default=240, ge=1, le=7 * 24 * 60)
    public_url: str | None = Field(
        default=None,
        description="Base URL people reach the crisis room at (links in messages); "
        "default: ALERTING_CRISIS_ROOM_URL.",
    )

    web_enabled: bool | None = Field(
        default=None, description="Serve the crisis room; default: on when routing is set."
    )
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    web_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated 'name:scrypt$...' (see docs/delivery.md for hashing).",
    )
    web_trusted_header: str | None = Field(
        default=None,
        description="Header set by a trusted reverse proxy with the logged-in user "
        "(e.g. X-Forwarded-User); only honoured from web_trusted_proxies.",
    )
    web_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"]
    )
    web_cookie_secure: bool = Field(
        default=False, description="Mark cookies Secure (set behind TLS)."
    )

    sms_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["twilio", "http"],
        description="Failover order; providers without credentials are left out.",
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    http_sms_url: str | None = Field(
        default=None, description="Generic HTTP SMS gateway (seven.io style form POST)."
    )
    http_sms_api_key: SecretStr | None = None
    http_sms_from: str = "stormwatch"
    ntfy_url: str | None = Field(default=None, description="ntfy server, e.g. https://ntfy.sh")
    ntfy_token: SecretStr | None = None
    alertmanager_url: str | None = None
    alertmanager_resend_s: float = Field(default=60.0, gt=0)
    grafana_url: str | None = None
    grafana_token: SecretStr | None = None

    send_timeout_s: float = Field(default=15.0, gt=0, le=300)
    retry_attempts: int = Field(default=4, ge=1, le=20)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_cap_s: float = Field(default=30.0, gt=0)
    provider_down_s: float = Field(default=300.0, ge=0)
    tick_s: float = Field(default=5.0, gt=0, le=300)

    _split_lists = field_validator(
        "web_users", "web_trusted_proxies", "sms_providers", mode="before"
    )(_split)

    @field_validator("sms_providers")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = set(value) - {"twilio", "http"}
        if unknown:
            raise ValueError(f"unknown SMS providers {sorted(unknown)} (twilio, http)")
        return value
