"""The detector's input value: built from a scored mention field by field, and immutable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from stormwatch_alerting.adapters import observation
from stormwatch_alerting.domain.types import OBSERVATION_FIELDS, Observation
from stormwatch_shared.codec import FastDecoder, encode
from stormwatch_shared.events import Author, Mention, MentionScored

T0 = datetime(2026, 3, 2, 10, 30, 15, 250000, tzinfo=UTC)


def _scored() -> MentionScored:
    # every field distinct, so a value landing in the wrong position cannot go unseen
    return MentionScored(
        occurred_at=T0,
        target_id="paula",
        target_ids=("paula", "hospital"),
        target_kind="ambassador",
        mention=Mention(
            id="x:42",
            source="x",
            created_at=T0,
            text="Unverschämt, stundenlang gewartet",
            author=Author(id="u7", handle="@wut", followers=1234),
            in_reply_to="x:41",
            url="https://x.example/wut/status/42",
        ),
        label="negative",
        scores={"negative": 0.875, "neutral": 0.1, "positive": 0.025},
        topics=("wait_times", "staff_conduct"),
        language="de",
        model_id="test",
        received_event_id="r42",
    )


EXPECTED = {
    "target_id": "paula",
    "at": T0.timestamp(),
    "mention_id": "x:42",
    "author_id": "u7",
    "followers": 1234,
    "negative": 0.875,
    "label": "negative",
    "in_reply_to": "x:41",
    "topics": ("wait_times", "staff_conduct"),
    "url": "https://x.example/wut/status/42",
    "text": "Unverschämt, stundenlang gewartet",
    "target_kind": "ambassador",
}


@pytest.mark.parametrize("how", ["pydantic", "msgspec"])
def test_every_field_comes_from_its_own_source(how: str) -> None:
    event = _scored()
    if how == "msgspec":  # what the service consumes
        event = FastDecoder(MentionScored).struct(encode(event))
    obs = observation(event)
    assert set(EXPECTED) == set(OBSERVATION_FIELDS)
    assert {f: getattr(obs, f) for f in OBSERVATION_FIELDS} == EXPECTED
    assert obs == Observation(**EXPECTED)  # positional and keyword construction agree


def test_replace_eq_hash_and_repr() -> None:
    obs = Observation(**EXPECTED)
    moved = obs.replace(at=obs.at + 60.0, author_id="u8")
    assert (moved.at, moved.author_id, moved.mention_id) == (obs.at + 60.0, "u8", "x:42")
    assert obs.at == EXPECTED["at"]  # the original is untouched
    assert obs.replace() == obs and hash(obs.replace()) == hash(obs)
    assert moved != obs and obs != object()
    assert repr(obs).startswith("Observation(target_id='paula', at=")
    with pytest.raises(TypeError, match="no field"):
        obs.replace(score=1.0)


def test_defaults() -> None:
    obs = Observation("t", 1.0, "m", "a", 3, 0.5, "neutral")
    assert (obs.in_reply_to, obs.topics, obs.url, obs.text, obs.target_kind) == (
        None,
        (),
        None,
        "",
        "organisation",
    )


def test_compiled_observation_is_read_only() -> None:
    # in a process of its own with the compiled build (``make setup``), whatever mode this
    # one runs in: interpreted, ``Final`` is a promise of the type checker only
    import os
    import subprocess
    import sys

    code = (
        "from stormwatch_alerting import domain\n"
        "from stormwatch_alerting.domain.types import Observation\n"
        "assert domain.NATIVE, 'no compiled build: run make setup'\n"
        "obs = Observation('t', 1.0, 'm', 'a', 3, 0.5, 'neutral')\n"
        "try:\n"
        "    obs.at = 0.0\n"
        "except AttributeError as exc:\n"
        "    print('refused', obs.at, exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "STORMWATCH_PURE_PYTHON"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused 1.0"), out.stdout
