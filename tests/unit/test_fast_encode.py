"""The sentiment service's msgspec output must be the pydantic model's, refusal for refusal.

``FastEncoder`` validates the fields of a ``MentionScored`` into the msgspec mirror of the
model and encodes that; the replay builds the pydantic model from the same fields. Whatever
one accepts the other must accept, with the same bytes; whatever one refuses the other
refuses (the mention then goes to the dead-letter topic with the reason).
"""

from __future__ import annotations

import copy
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_sentiment.domain.topics import TopicTagger
from stormwatch_sentiment.engines import load_default
from stormwatch_sentiment.scoring import Scorer
from stormwatch_shared.codec import FastDecoder, FastEncoder, decode, encode
from stormwatch_shared.events import (
    Author,
    EngagementMetrics,
    Mention,
    MentionReceived,
    MentionScored,
)

OUT = FastEncoder(MentionScored)
TEXTS = [
    "Sechs Stunden in der Notaufnahme gewartet, unerträglich @user http",
    "Danke an das Team der Station 4 ❤️ #pflege",
    'Zitat: "nie wieder" \\u2019 \n zweite Zeile\ttab',
    "😡😡😡 " * 30,
    "",
    "日本語のテキスト и кириллица",
    "x" * 2_000,
]


def _received(
    i: int, *, created: datetime | None = None, lang: str | None = "de"
) -> MentionReceived:
    rng = random.Random(i)
    created = created or datetime(2026, 3, 11, 15, 4, 9, rng.randrange(0, 10**6), tzinfo=UTC)
    mention = Mention(
        id=f"x:{i}",
        source=rng.choice(["x", "mastodon", "bluesky"]),
        created_at=created,
        text=TEXTS[i % len(TEXTS)],
        lang=lang,
        author=Author(id=f"u{i}", handle=f"h{i}", followers=rng.randrange(0, 10**7)),
        url=f"https://example.org/{i}" if i % 3 else None,
        in_reply_to=f"x:{i - 1}" if i % 4 == 0 else None,
        metrics=EngagementMetrics(likes=i, reposts=i // 2, replies=i // 3),
    )
    return MentionReceived(
        event_id=f"x:{i}|hospital",
        drill=i % 5 == 0,
        occurred_at=created,
        target_id="hospital",
        target_ids=("hospital", "paula") if i % 2 else ("hospital",),
        target_name="Klinikum Süd",
        target_kind="organisation",
        mention=mention,
    )


def _both(fields: dict[str, Any]) -> tuple[bytes | None, bytes | None]:
    """The model's bytes (nested mention as the pydantic model) and the encoder's (nested
    mention as the struct), or None where one refuses."""
    try:
        slow: bytes | None = encode(MentionScored(**dict(fields, mention=_MENTION)))
    except ValueError:
        slow = None
    try:
        fast: bytes | None = OUT.encode(OUT.validate(fields))
    except ValueError:
        fast = None
    return slow, fast


def test_scored_mentions_get_the_same_bytes_from_either_route() -> None:
    """The replay's route (pydantic events in, the model out) against the service's
    (``FastDecoder.struct`` in, ``FastEncoder`` out), on the same messages."""
    scorer = Scorer(load_default(), TopicTagger.default())
    offsets = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
    events = [_received(i) for i in range(60)]
    events += [_received(100 + i, lang=None) for i in range(10)]  # language guessed
    events += [  # non-UTC offsets (a source's spelling): both write UTC
        _received(200 + i, created=datetime(2026, 3, 11, 15, 4, i, tzinfo=offsets[i % 3]))
        for i in range(6)
    ]
    raws = [encode(e) for e in events]
    # spellings a source may use: more than 6 fraction digits (rounded on both routes, the
    # fast one reads them itself) and an offset (msgspec keeps it, so the struct then comes
    # from pydantic's canonical JSON)
    odd = [
        raws[1].replace(b"15:04:09.", b"15:04:09.123", 1),
        raws[2].replace(b'Z","target_id"', b'+02:00","target_id"', 1),
    ]
    assert all(r not in raws for r in odd)
    assert FastDecoder(MentionReceived).fast(odd[0]) is not None
    assert FastDecoder(MentionReceived).fast(odd[1]) is None
    events += [decode(r, MentionReceived) for r in odd]
    raws += odd
    decoder = FastDecoder(MentionReceived)
    structs = [decoder.struct(r) for r in raws]
    assert all(not isinstance(s, MentionReceived) for s in structs)
    replay = scorer.score(events)
    served = [OUT.encode(OUT.validate(f)) for f in scorer.fields(structs)]
    assert [encode(m) for m in replay] == served
    # the batch conversion the service uses gives the same events, in the same order
    assert [OUT.encode(e) for e in OUT.validate_many(scorer.fields(structs))] == served


def test_the_batch_conversion_refuses_what_one_by_one_refuses() -> None:
    fields = [dict(_FIELDS, received_event_id=f"r{i}") for i in range(5)]
    fields[3] = dict(fields[3], scores={"negative": math.nan, "neutral": 0.5, "positive": 0.5})
    with pytest.raises(ValueError, match="schema violation") as caught:
        OUT.validate_many(fields)
    assert "[3]" in str(caught.value)  # the position of the refused one
    refused = []
    for i, f in enumerate(fields):
        try:
            OUT.validate(f)
        except ValueError:
            refused.append(i)
    assert refused == [3]
    assert OUT.validate_many([]) == []


def _base_fields() -> dict[str, Any]:
    struct = FastDecoder(MentionReceived).struct(encode(_received(1)))
    (fields,) = Scorer(load_default(), TopicTagger.default()).fields([struct])
    return fields


SCORE_VALUES = [0.0, 1.0, 0.5, 1e-300, -0.0, -1e-9, 1.0000001, math.nan, math.inf, -math.inf, 2]
VALUES: list[Any] = [
    *SCORE_VALUES,
    "negative",
    "neutral",
    "positive",
    "maybe",
    "",
    "x" * 101,
    (),
    ("a",),
    ("a", 1),
    None,
    True,
    1,
    datetime(2026, 3, 11, 15, 4, 9),  # naive
    datetime(2026, 3, 11, 15, 4, 9, tzinfo=UTC),
    datetime(2026, 3, 11, 17, 4, 9, 5, tzinfo=timezone(timedelta(hours=2))),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),  # past UTC
    "2026-03-11T15:04:09Z",
]
KEYS = [
    "label",
    "language",
    "topics",
    "model_id",
    "occurred_at",
    "target_id",
    "target_ids",
    "event_id",
    "received_event_id",
    "drill",
    "language_supported",
]


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("scores"),
                st.sampled_from(["negative", "neutral", "positive", "bogus"]),
                st.sampled_from(SCORE_VALUES),
            ),
            st.tuples(st.just("field"), st.sampled_from(KEYS), st.sampled_from(VALUES)),
        ),
        max_size=3,
    )
)
def test_either_route_refuses_what_the_other_refuses(mutations: list[Any]) -> None:
    fields = copy.copy(_FIELDS)
    fields["scores"] = dict(fields["scores"])
    for kind, key, value in mutations:
        if kind == "scores":
            fields["scores"][key] = value
        else:
            fields[key] = value
    slow, fast = _both(fields)
    if fast is not None:  # never laxer than the model, and then the same bytes
        assert slow == fast, "msgspec accepts what pydantic refuses" if slow is None else ""
    elif slow is not None:  # stricter only where pydantic coerces a value of another type
        changed = {key: fields[key] for kind, key, _ in mutations if kind == "field"}
        assert any(_coerced(key, value) for key, value in changed.items()), changed


def _coerced(key: str, value: Any) -> bool:
    """Values of another type that pydantic's lax mode converts (a number as a timestamp,
    ``1`` or ``True`` for a bool, a list for a tuple) and msgspec refuses, and timestamps
    with another offset than UTC, which pydantic converts and the frozen struct cannot: the
    scorer never produces them, its fields carry the declared types and the decoder's UTC."""
    if key == "occurred_at" and isinstance(value, datetime) and value.tzinfo not in (None, UTC):
        return True
    declared = {
        "occurred_at": datetime,
        "drill": bool,
        "language_supported": bool,
        "target_ids": tuple,
        "topics": tuple,
    }.get(key, str)
    return not isinstance(value, declared) or (declared is not bool and isinstance(value, bool))


def test_a_timestamp_in_another_offset_is_refused_not_misread() -> None:
    """The contract: timestamps are in UTC, as ``FastDecoder`` gives them. pydantic would
    convert another offset to UTC; the struct is frozen, so the value is refused, with the
    field named, instead of being written with its offset. A UTC ``datetime`` is taken."""
    other = datetime(2026, 3, 11, 17, 4, 9, tzinfo=timezone(timedelta(hours=2)))
    with pytest.raises(ValueError, match="occurred_at: timestamp must be in UTC"):
        OUT.validate(dict(_FIELDS, occurred_at=other))
    with pytest.raises(ValueError, match=r"\[1\] occurred_at: timestamp must be in UTC"):
        OUT.validate_many([_FIELDS, dict(_FIELDS, occurred_at=other)])
    slow, fast = _both(dict(_FIELDS, occurred_at=datetime(2026, 3, 11, 15, 4, 9, tzinfo=UTC)))
    assert fast is not None
    assert fast == slow


_FIELDS = _base_fields()
_MENTION = _received(1).mention


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.01, 1.01])
def test_a_probability_out_of_range_is_refused_with_the_field_named(bad: float) -> None:
    fields = dict(_FIELDS, scores={"negative": bad, "neutral": 0.5, "positive": 0.5})
    with pytest.raises(ValueError, match="scores"):
        OUT.validate(fields)


def test_the_decoded_mention_is_taken_as_it_is_not_validated_twice() -> None:
    """One struct type per nested model: the mention ``FastDecoder`` validated passes
    through ``FastEncoder`` unchanged (half of its cost, measured 2026-12-02)."""
    assert OUT.validate(_FIELDS).mention is _FIELDS["mention"]
