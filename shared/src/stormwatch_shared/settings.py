"""Settings shared by every service, and the one way all services load settings.

Configuration comes from the environment (12-factor) so the same image runs in compose,
in tests and on a laptop. A wrong value must stop the service at start with the name of
the environment variable, never with a stack trace or, worse, a silent default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

S = TypeVar("S", bound=BaseSettings)


class SettingsError(SystemExit):
    """Raised with a ready-to-print, German-first message naming the offending variable."""


class KafkaSettings(BaseSettings):
    """Where the broker is and how topics are named; the same for all services."""

    model_config = SettingsConfigDict(env_prefix="STORMWATCH_KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    topic_prefix: str = Field(
        default="",
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic name (isolates tests, drills or tenants).",
    )
    partitions: int = Field(default=6, ge=1, le=1000, description="Partitions for new topics.")
    compression: Literal["none", "lz4", "gzip"] = Field(
        default="none",
        description="Compression of the records the services write (none, lz4, gzip). none "
        "saves the services' CPU; lz4 saves network and disk where the broker is remote or "
        "volumes are large. The detector changelog is compressed by the broker either way.",
    )
    connect_timeout_s: float = Field(
        default=300.0,
        ge=0,
        description="How long a service waits for the broker at start before it gives up "
        "with a message (0: wait forever).",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts(cls, value: str) -> str:
        for part in value.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {part.strip()!r}")
        return value

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


class RetentionSettings(BaseSettings):
    """How long personal data is kept (GDPR Art. 5(1)(e)); see docs/privacy.md.

    The same figures drive the Kafka topics' ``retention.ms`` (``stormwatch topics ensure``
    also aligns existing topics) and the purge of the alerting state database.
    """

    model_config = SettingsConfigDict(env_prefix="STORMWATCH_RETENTION_", extra="ignore")

    mentions_days: int = Field(
        default=30, ge=1, le=3650, description="Raw and scored mentions (post texts) in Kafka."
    )
    alerts_days: int = Field(
        default=365, ge=1, le=3650, description="Alerts topic and closed alerts in the state DB."
    )
    audit_days: int = Field(default=365, ge=1, le=3650, description="Delivery audit log.")
    texts_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Quoted post texts, handles and links in stored alert evidence.",
    )


def env_name(cls: type[BaseSettings], field: str) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def _is_secret(annotation: Any) -> bool:
    args = getattr(annotation, "__args__", ())
    return annotation is SecretStr or SecretStr in args


def secret_file_values(cls: type[BaseSettings]) -> dict[str, Any]:
    """Secrets named by ``<VARIABLE>_FILE`` (Docker/Kubernetes secret files), per secret field.

    A secret in a file never shows in ``ps``, ``docker inspect`` or a crash dump of the
    environment. Setting both the variable and its ``_FILE`` is refused: which one wins would
    be a guess. Errors name the variable and the file, never the content.
    """
    out: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if not _is_secret(info.annotation):
            continue
        var = env_name(cls, name)
        path = os.environ.get(f"{var}_FILE")
        if not path:
            continue
        if os.environ.get(var):
            raise SettingsError(
                "Konfigurationsfehler / configuration error:\n"
                f"  {var} und / and {var}_FILE: nur eines setzen / set only one of them"
            )
        try:
            value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(
                "Konfigurationsfehler / configuration error:\n"
                f"  {var}_FILE: Datei nicht lesbar / cannot read {path!r} "
                f"({type(exc).__name__})"
            ) from None
        out[name] = SecretStr(value)
    return out


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment or exit with a message naming each bad variable.

    Values are not echoed: a mistyped secret must not end up in a log. Secret fields may
    also come from a file named by ``<VARIABLE>_FILE``.
    """
    try:
        return cls(**secret_file_values(cls))
    except PydanticSettingsError as exc:
        # Raised before validation when a value cannot even be parsed (e.g. bad JSON).
        raise SettingsError(
            f"Konfigurationsfehler / configuration error ({cls.__name__}): {exc}"
        ) from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err["loc"][0] if err["loc"] else ""
            name = env_name(cls, str(loc)) if loc else cls.__name__
            lines.append(f"  {name}: {err['msg']}")
        detail = "\n".join(lines)
        raise SettingsError(
            "Konfigurationsfehler / configuration error:\n"
            f"{detail}\n"
            "Bitte die genannte Umgebungsvariable korrigieren und neu starten. "
            "/ Fix the variable named above and start again."
        ) from None
