"""The msgspec fast path of the alerting consumer must never accept more than pydantic does.

Whatever ``FastDecoder.fast`` accepts, ``decode`` (pydantic) must accept too, with the same
values; whatever it refuses goes through ``decode`` and reads exactly as before.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, field_validator
from stormwatch_shared.codec import DecodeError, FastDecoder, decode, encode
from stormwatch_shared.events import Author, Mention, MentionReceived, MentionScored


def valid() -> dict[str, Any]:
    mention = Mention(
        id="1899",
        source="x",
        created_at=datetime(2026, 3, 11, 15, 4, 9, tzinfo=UTC),
        text="Sechs Stunden in der Notaufnahme gewartet, unerträglich @user http",
        lang="de",
        author=Author(id="u1", handle="someone", followers=12),
        url="https://x.com/someone/status/1899",
    )
    event = MentionScored(
        occurred_at=mention.created_at,
        target_id="hospital",
        target_ids=("hospital", "paula"),
        target_name="Klinikum",
        mention=mention,
        label="negative",
        scores={"negative": 0.8, "neutral": 0.15, "positive": 0.05},
        language="de",
        topics=("waiting_time",),
        model_id="m",
        received_event_id="r",
    )
    data: dict[str, Any] = orjson.loads(encode(event))
    return data


PATHS = [
    (),
    ("mention",),
    ("mention", "author"),
    ("mention", "metrics"),
    ("scores",),
]
KEYS = {
    (): [*valid(), "extra"],
    ("mention",): [*valid()["mention"], "extra"],
    ("mention", "author"): ["id", "handle", "followers", "extra"],
    ("mention", "metrics"): ["likes", "reposts", "replies", "extra"],
    ("scores",): ["negative", "neutral", "positive", "bogus"],
}
VALUES: list[Any] = [
    None,
    "",
    "x",
    *("y" * n for n in (16, 17, 40, 41, 100, 101, 200, 201, 600, 601)),
    "z" * 10_001,
    "ü" * 200,  # lengths count code points in both
    "ü" * 201,
    "😡" * 201,
    -1,
    0,
    1,
    1.0,
    1.5,
    True,
    False,
    "1",
    [],
    ["a"],
    {},
    "2026-03-11T15:04:09Z",
    "2026-03-11T15:04:09",
    "2026-03-11T17:04:09+02:00",
    "2026-03-11 15:04:09Z",
    "2026-03-11t15:04:09z",
    "2026-03-11T15:04:09.123456789Z",
    "2026-03-11T15:04:09.5Z",
    "2026-03-11T15:04:09+23:59",
    "2026-03-11T15:04:09-00:00",
    "2026-03-11T15:04:09+24:00",
    "2026-02-30T15:04:09Z",
    "2026-03-11T24:00:00Z",
    "2026-03-11T15:04:60Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "２０２６-03-11T15:04:09Z",
    1_773_000_000,
    "negative",
    "maybe",
    "x",
    "replay",
    "MentionScored",
    "MentionReceived",
]

mutation = st.tuples(
    st.sampled_from(PATHS),
    st.integers(0, 40),
    st.one_of(st.just("delete"), st.sampled_from(VALUES)),
)


def mutate(data: dict[str, Any], path: tuple[str, ...], key_index: int, value: Any) -> None:
    node = data
    for part in path:
        if not isinstance(node.get(part), dict):
            return
        node = node[part]
    keys = KEYS[path]
    key = keys[key_index % len(keys)]
    if isinstance(value, str) and value == "delete":
        node.pop(key, None)
    else:
        node[key] = copy.deepcopy(value)


def same(fast: Any, model: Any) -> None:
    """Field by field; timestamps to the microsecond and in UTC, as pydantic gives them."""
    if isinstance(model, BaseModel):
        for name in type(model).model_fields:
            same(getattr(fast, name), getattr(model, name))
    elif isinstance(model, datetime):
        assert isinstance(fast, datetime)
        assert fast.tzinfo is UTC
        assert model.tzinfo is UTC
        assert fast == model
    else:
        assert type(fast) is type(model)
        assert fast == model


@settings(max_examples=1500, deadline=None)
@given(st.lists(mutation, max_size=3))
def test_fast_path_accepts_nothing_pydantic_refuses(mutations: list[Any]) -> None:
    data = valid()
    for path, key_index, value in mutations:
        mutate(data, path, key_index, value)
    raw = orjson.dumps(data)
    fast = FastDecoder(MentionScored).fast(raw)
    if fast is None:
        return
    model = decode(raw, MentionScored)  # raises if pydantic refuses: the test fails
    if "event_id" not in data:  # both draw a fresh id
        return
    same(fast, model)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"hospital"', b'"hosp\\ud800ital"'),  # a lone surrogate
        (b'"target_id":"hospital"', b'"target_id":"a","target_id":"hospital"'),  # duplicate key
        (b'"followers":12', b'"followers":12345678901234567890123'),  # past int64
        (b'"followers":12', b'"followers":1e3'),
        (b'"followers":12', b'"followers":-0'),
        (b'"negative":0.8', b'"negative":1e400'),
        (b'"negative":0.8', b'"negative":NaN'),
        (b'"drill":false', b'"drill":0'),
        (b'"Klinikum"', b'"Klinik\\u00fcm"'),
        (b"{", b" \n{ "),
    ],
)
def test_raw_edge_cases(old: bytes, new: bytes) -> None:
    raw = orjson.dumps(valid())
    assert old in raw
    raw = raw.replace(old, new, 1)
    fast = FastDecoder(MentionScored).fast(raw)
    if fast is not None:
        same(fast, decode(raw, MentionScored))


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    name: str


def test_valid_messages_take_the_fast_path() -> None:
    raw = orjson.dumps(valid())
    fast = FastDecoder(MentionScored).fast(raw)
    assert fast is not None
    same(fast, decode(raw, MentionScored))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"schema_version": 2}, "unsupported schema_version 2"),
        ({"schema_version": None}, "unsupported schema_version None"),
        ({"type": "MentionReceived"}, "unexpected event type"),
        ({"label": "maybe"}, "schema violation: label"),
        ({"occurred_at": "2026-03-11T15:04:09"}, "timestamp must carry a timezone"),
        (
            {"scores": {"negative": 1.5, "neutral": 0.1, "positive": 0.1}},
            "schema violation: scores.negative",
        ),
        (
            {"scores": {"negative": 0.8, "neutral": -0.2, "positive": 0.1}},
            "schema violation: scores.neutral",
        ),
    ],
)
def test_refused_messages_read_as_pydantic_explains_them(
    change: dict[str, Any], reason: str
) -> None:
    data = {**valid(), **change}
    raw = orjson.dumps(data)
    decoder = FastDecoder(MentionScored)
    assert decoder.fast(raw) is None
    with pytest.raises(DecodeError) as fast_error:
        decoder(raw)
    with pytest.raises(DecodeError) as slow_error:
        decode(raw, MentionScored)
    assert str(fast_error.value) == str(slow_error.value)
    assert reason in str(fast_error.value)


def test_stated_version_and_type_are_required() -> None:
    for key in ("schema_version", "type"):
        data = valid()
        del data[key]
        raw = orjson.dumps(data)
        assert FastDecoder(MentionScored).fast(raw) is None
        with pytest.raises(DecodeError):
            FastDecoder(MentionScored)(raw)


def test_oversized_and_invalid_bytes() -> None:
    decoder = FastDecoder(MentionScored)
    with pytest.raises(DecodeError, match="message too large"):
        decoder(b"{" + b" " * 300_000 + b"}")
    with pytest.raises(DecodeError, match="invalid JSON"):
        decoder(b'{"type": "MentionScored", \xff}')


class _Unmirrorable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern="^a")


class _Validated(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str

    @field_validator("name")
    @classmethod
    def _check(cls, value: str) -> str:
        return value


class _Lax(BaseModel):
    name: str


@pytest.mark.parametrize("model", [_Unmirrorable, _Lax, _Strict, MentionReceived])
def test_models_it_cannot_mirror_exactly_fail_at_start(model: type[BaseModel]) -> None:
    if model is MentionReceived:
        FastDecoder(model)  # mirrors fine: same building blocks as MentionScored
        return
    with pytest.raises(TypeError):
        FastDecoder(model)


def test_field_validators_are_not_silently_skipped() -> None:
    with pytest.raises(TypeError, match="validators"):
        FastDecoder(_Validated)


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_probabilities_that_are_not_finite_are_dead_lettered(token: bytes) -> None:
    # Summed per author and window by the detector: one of these would poison its state.
    raw = orjson.dumps(valid()).replace(b'"negative":0.8', b'"negative":' + token, 1)
    assert token in raw
    with pytest.raises(DecodeError):
        FastDecoder(MentionScored)(raw)
    with pytest.raises(DecodeError):
        decode(raw, MentionScored)


class _FiniteOnly(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    x: dict[str, Annotated[float, Field(allow_inf_nan=False)]]


class _Bounded(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    x: dict[str, Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]]


def test_finite_floats_are_mirrored_only_with_both_bounds() -> None:
    with pytest.raises(TypeError, match="both bounds"):
        FastDecoder(_FiniteOnly)
    FastDecoder(_Bounded)  # mirrors: msgspec refuses non-finite values outside the bounds


SPELLINGS = [
    "2026-03-11T15:04:09Z",
    "2026-03-11T15:04:09z",
    "2026-03-11t15:04:09Z",
    "2026-03-11 15:04:09Z",
    "2026-03-11T15:04:09+00:00",
    "2026-03-11T15:04:09-00:00",
    "2026-03-11T15:04:09+0000",
    "2026-03-11T15:04:09.5Z",
    "2026-03-11T15:04:09.123456Z",
    "2026-03-11T15:04:09.000000Z",
    "2026-03-11T15:04:09.1234567Z",  # rounded to the microsecond on both paths
    "2026-03-11T15:04:09.9999996Z",
    "2026-03-11T23:59:59.9999999z",
    "2026-03-11T15:04:09.9999999+00:00",
    "2026-03-11T15:04:09.9999999-0000",
    "2026-03-11T15:04:09.123456789Z",
    "2026-03-11T17:04:09+02:00",  # msgspec keeps the offset, pydantic converts to UTC
    "2026-03-11T17:04:09.9999999+02:00",
    "2026-03-11T15:04:09+0100",
    "2026-03-11T15:04:09+23:59",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.9999999Z",
    "2026-03-11T15:04Z",
    "2026-03-11T15:04:09,5Z",
    "2026-03-11T15:04:09",
]


@pytest.mark.parametrize("field", ["occurred_at", "created_at"])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_timestamp_spelling_reads_as_pydantic_reads_it(field: str, spelling: str) -> None:
    data = valid()
    (data if field == "occurred_at" else data["mention"])[field] = spelling
    raw = orjson.dumps(data)
    decoder = FastDecoder(MentionScored)
    fast = decoder.fast(raw)
    try:
        model = decode(raw, MentionScored)
    except DecodeError:
        assert fast is None  # never laxer
        with pytest.raises(DecodeError):
            decoder(raw)
        return
    if fast is not None:
        same(fast, model)
    same(decoder(raw), model)  # by either path, pydantic's values
    same(decoder.struct(raw), model)


@pytest.mark.parametrize(
    ("spelling", "instant"),
    [
        ("2026-03-11T15:04:09.1234564Z", datetime(2026, 3, 11, 15, 4, 9, 123456, tzinfo=UTC)),
        ("2026-03-11T15:04:09.1234565Z", datetime(2026, 3, 11, 15, 4, 9, 123457, tzinfo=UTC)),
        ("2026-03-11T15:04:09.123456789Z", datetime(2026, 3, 11, 15, 4, 9, 123457, tzinfo=UTC)),
        ("2026-03-11T23:59:59.9999996Z", datetime(2026, 3, 12, 0, 0, 0, tzinfo=UTC)),
        ("2026-03-11T17:04:09.9999999+02:00", datetime(2026, 3, 11, 15, 4, 10, tzinfo=UTC)),
        # rounding would pass the last instant datetime holds: pydantic's truncation stands
        ("9999-12-31T23:59:59.9999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_long_fractions_round_to_the_nearest_microsecond_on_both_paths(
    spelling: str, instant: datetime
) -> None:
    data = valid()
    data["occurred_at"] = spelling
    raw = orjson.dumps(data)
    assert decode(raw, MentionScored).occurred_at == instant
    assert FastDecoder(MentionScored)(raw).occurred_at == instant


ESCAPED = [
    # the seventh digit spelled as an escape: only the decoded text shows it
    ('"occurred_at":"2026-03-11T15:04:09Z"', '"occurred_at":"2026-03-11T15:04:09.999999\\u0039Z"'),
    ('"occurred_at":"2026-03-11T15:04:09Z"', '"occurred_at":"2026-03-11T15:04:09.99999\\u00399Z"'),
    ('"occurred_at":"2026-03-11T15:04:09Z"', '"occurred_at":"2026-03-11T15:04:09.9999999\\u005a"'),
    ('"occurred_at":"2026-03-11T15:04:09Z"', '"occurred_at":"2026-03-11T15:04:09\\u002e9999999Z"'),
    # escapes elsewhere, and digits in a text that look like a long fraction: fast path
    ('"text":"Sechs', '"text":"\\u0053echs 12:00:00.1234567Z\\\\u'),
]


@pytest.mark.parametrize(("old", "new"), ESCAPED)
def test_escaped_timestamps_read_as_pydantic_reads_them(old: str, new: str) -> None:
    raw = orjson.dumps(valid())
    assert old.encode() in raw
    raw = raw.replace(old.encode(), new.encode(), 1)
    decoder = FastDecoder(MentionScored)
    model = decode(raw, MentionScored)
    fast = decoder.fast(raw)
    if "occurred_at" in old:  # rounded, as msgspec reads the decoded text
        assert model.occurred_at == datetime(2026, 3, 11, 15, 4, 10, tzinfo=UTC)
    else:
        assert fast is not None
    if fast is not None:
        same(fast, model)
    same(decoder(raw), model)
