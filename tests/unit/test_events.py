from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError
from stormwatch_shared import schemas
from stormwatch_shared.codec import MAX_MESSAGE_BYTES, DecodeError, decode, encode
from stormwatch_shared.events import (
    Author,
    CrisisAlertRaised,
    Mention,
    MentionReceived,
    level_rank,
)

MENTION = Mention(
    id="x:1",
    source="x",
    created_at=datetime(2026, 3, 11, 15, 4, 9, tzinfo=UTC),
    text="Nie wieder Klinikum Nordstadt!",
    lang="de",
    author=Author(id="u1", handle="@anna", followers=212),
)


def received(**kw: object) -> MentionReceived:
    base = {
        "occurred_at": MENTION.created_at,
        "target_id": "hospital",
        "target_ids": ("hospital",),
        "mention": MENTION,
    }
    return MentionReceived(**{**base, **kw})  # type: ignore[arg-type]


def test_events_are_frozen_and_carry_id_version_and_event_time() -> None:
    event = received()
    assert event.event_id and event.schema_version == 1
    assert event.occurred_at == MENTION.created_at
    with pytest.raises(ValidationError):
        event.target_id = "other"  # type: ignore[misc]


def test_round_trip_through_bytes() -> None:
    event = received()
    assert decode(encode(event), MentionReceived) == event


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (orjson.dumps({"schema_version": 99, "type": "MentionReceived"}), "schema_version 99"),
        (orjson.dumps({"schema_version": 1, "type": "CrisisAlertRaised"}), "unexpected event"),
        (orjson.dumps({"schema_version": 1, "type": "MentionReceived"}), "schema violation"),
        (b"{" + b" " * MAX_MESSAGE_BYTES + b"}", "too large"),
        (b"\xff\xfe\x00garbage", "invalid JSON"),
    ],
)
def test_decode_errors_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(payload, MentionReceived)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"schema_version": 2}, "schema_version 2"),
        ({"schema_version": None}, "schema_version None"),
        ({"type": None}, "unexpected event type None"),
    ],
)
def test_an_otherwise_valid_event_needs_its_stated_version_and_type(
    change: dict[str, object], reason: str
) -> None:
    # The fast path validates first; a defaulted or wrong version or type must still refuse.
    data = orjson.loads(encode(received()))
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(DecodeError, match=reason):
        decode(orjson.dumps(data), MentionReceived)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Mention.model_validate({**MENTION.model_dump(), "created_at": "2026-03-11T15:04:09"})


def test_timestamps_past_the_utc_range_are_a_decode_error_not_a_crash() -> None:
    # valid RFC 3339, but one hour past year 9999 in UTC: astimezone raised OverflowError,
    # which escaped pydantic and would have crashed the consumer on every redelivery
    data = orjson.loads(encode(received()))
    data["occurred_at"] = "9999-12-31T23:59:59-01:00"
    with pytest.raises(DecodeError, match="out of range"):
        decode(orjson.dumps(data), MentionReceived)


def test_level_order() -> None:
    assert level_rank("watch") < level_rank("warning") < level_rank("critical")
    assert level_rank("bogus") == 0


def test_alert_levels_are_a_closed_set() -> None:
    with pytest.raises(ValidationError):
        CrisisAlertRaised(
            occurred_at=MENTION.created_at,
            alert_id="a",
            target_id="t",
            level="panic",  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("name", sorted(schemas.current()))
def test_schema_snapshot_is_up_to_date(name: str) -> None:
    """Fails when an event model changes without a reviewed snapshot (run `make schemas`)."""
    path = schemas.SNAPSHOT_DIR / f"{name}.v1.schema.json"
    assert path.exists(), f"missing snapshot {path}; run `make schemas`"
    assert path.read_text(encoding="utf-8") == schemas.render(schemas.current()[name]), (
        f"{name} changed: review the change, bump schema_version if it breaks readers, "
        "then run `make schemas`"
    )
