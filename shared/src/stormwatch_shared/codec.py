"""Bytes <-> events, with errors that say what is wrong so a dead letter explains itself."""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from stormwatch_shared.events import SCHEMA_VERSION

M = TypeVar("M", bound=BaseModel)

MAX_MESSAGE_BYTES = 256 * 1024
"""Larger messages are refused: no mention needs this, and it protects the consumers."""


class DecodeError(ValueError):
    """A message that cannot become the expected event; the text is the dead-letter reason."""


def encode(event: BaseModel) -> bytes:
    return orjson.dumps(event.model_dump(mode="json"))


def decode(raw: bytes, model: type[M]) -> M:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message too large: {len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DecodeError(
            f"unsupported schema_version {version!r} (this service reads {SCHEMA_VERSION})"
        )
    expected = model.model_fields.get("type")
    if expected is not None and data.get("type") != expected.default:
        raise DecodeError(f"unexpected event type {data.get('type')!r}, want {expected.default!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise DecodeError(f"schema violation: {errors}") from exc
