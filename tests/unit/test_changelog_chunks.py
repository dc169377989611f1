"""A flush hands the detector states over in bounded chunks, encoded lazily: the memory a
flush needs must not grow with the number of targets (``DetectorStateStore.encoded_chunks``)."""

from __future__ import annotations

import orjson
import pytest
from stormwatch_alerting.domain.detector import Detector
from stormwatch_alerting.domain.types import Observation
from stormwatch_alerting.state import DetectorStateStore

T0 = 1_773_000_000.0


def _sized_store(sizes: dict[str, int]) -> tuple[DetectorStateStore, list[str]]:
    """A store whose ``encode`` returns ``sizes[target]`` bytes and notes each call."""
    store = DetectorStateStore(Detector(), "127.0.0.1:1", "changelog")
    calls: list[str] = []

    def encode(target_id: str) -> bytes:
        calls.append(target_id)
        return target_id.encode().ljust(sizes[target_id], b".")

    store.encode = encode  # type: ignore[method-assign]
    return store, calls


@pytest.mark.parametrize(
    ("sizes", "max_bytes", "chunks"),
    [
        ({}, 100, []),
        ({"a": 10}, 100, [["a"]]),
        ({"a": 40, "b": 40, "c": 40}, 100, [["a", "b"], ["c"]]),
        ({"a": 50, "b": 50, "c": 50}, 100, [["a", "b"], ["c"]]),  # exactly full
        ({"a": 50, "b": 51, "c": 10}, 100, [["a"], ["b", "c"]]),
        ({"a": 10, "b": 500, "c": 10}, 100, [["a"], ["b"], ["c"]]),  # too big: alone
        ({"a": 500, "b": 600}, 100, [["a"], ["b"]]),
    ],
)
def test_chunks_keep_order_and_bound_their_size(
    sizes: dict[str, int], max_bytes: int, chunks: list[list[str]]
) -> None:
    store, _ = _sized_store(sizes)
    got = list(store.encoded_chunks(list(sizes), max_bytes))
    assert [[key.decode() for _, key in chunk] for chunk in got] == chunks
    for chunk in got:
        assert len(chunk) == 1 or sum(len(v) for v, _ in chunk) <= max_bytes
        assert all(len(v) == sizes[k.decode()] for v, k in chunk)


def test_the_next_chunk_is_encoded_only_when_asked_for() -> None:
    store, calls = _sized_store({t: 60 for t in "abcdef"})
    chunks = store.encoded_chunks(list("abcdef"), 100)
    assert calls == []
    first = next(chunks)
    assert [k for _, k in first] == [b"a"]
    assert calls == ["a", "b"]  # "b" was needed to know that "a" stands alone
    next(chunks)
    assert calls == ["a", "b", "c"]


def test_chunked_states_are_the_states_the_store_encodes() -> None:
    detector = Detector()
    store = DetectorStateStore(detector, "127.0.0.1:1", "changelog")
    targets = [f"t{i}" for i in range(7)]
    for i, target in enumerate(targets):
        detector.observe(
            Observation(target, T0 + i, f"m{i}", f"u{i}", 1, 0.0, "neutral"),
        )
        store.mark(target, 0, i)
    one = len(store.encode(targets[0]))
    chunks = list(store.encoded_chunks(targets, 2 * one + 1))
    assert len(chunks) > 1
    flat = [item for chunk in chunks for item in chunk]
    assert [k.decode() for _, k in flat] == targets
    for value, key in flat:
        assert value == store.encode(key.decode())
        assert orjson.loads(value)["target_id"] == key.decode()
