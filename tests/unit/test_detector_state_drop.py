"""A tombstone in the detector changelog erases the target's restored state."""

from __future__ import annotations

import orjson
from stormwatch_alerting.domain.detector import Detector
from stormwatch_alerting.domain.types import Observation
from stormwatch_alerting.state import DetectorStateStore


def _obs(i: int) -> Observation:
    return Observation(
        target_id="paula",
        at=1_773_000_000.0 + 60 * i,
        mention_id=f"m{i}",
        author_id=f"u{i}",
        followers=10,
        negative=0.9,
        label="negative",
    )


def test_tombstone_after_state_erases_the_target() -> None:
    source = Detector()
    for i in range(5):
        source.observe(_obs(i))
    writer = DetectorStateStore(source, "127.0.0.1:1", "changelog")
    writer.mark("paula", 0, 4)
    record = writer.encode("paula")

    restored = Detector()
    store = DetectorStateStore(restored, "127.0.0.1:1", "changelog")
    assert store.apply(record, b"paula")
    assert restored.targets() == ["paula"]
    assert store.already_applied("paula", 0, 4)
    assert not store.apply(None, b"paula")
    assert restored.targets() == []
    assert not store.already_applied("paula", 0, 4)


def test_unreadable_state_is_skipped_not_fatal() -> None:
    store = DetectorStateStore(Detector(), "127.0.0.1:1", "changelog")
    assert not store.apply(b"{not json", b"paula")
    assert not store.apply(orjson.dumps({"target_id": "paula", "state": {}}), b"paula")
