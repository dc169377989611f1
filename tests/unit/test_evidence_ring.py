"""The evidence stream's ring of recent buckets (two circular lists since 2026-12-03) against
a plain list of every pair pushed: window sums, the state it writes, what it loads, peeks.

Sums are compared with a tolerance: the stream keeps running sums (add the new bucket, take
the leaving one off) whose float rounding differs from a fresh sum; the ring itself and the
saved state must match exactly."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_alerting.domain.baseline import BaselineParams, EvidenceStream

SCALES = [(6, 12, 36), (1, 3), (5,), (2, 7, 4)]
pairs = st.lists(
    st.tuples(st.floats(0.0, 40.0, allow_nan=False), st.floats(0.01, 20.0, allow_nan=False)),
    max_size=90,
)


def _stream(scales: tuple[int, ...]) -> EvidenceStream:
    return EvidenceStream(replace(BaselineParams(), scales=scales))


@settings(max_examples=120, deadline=None)
@given(scales=st.sampled_from(SCALES), pushed=pairs)
def test_windows_and_state_follow_the_last_buckets(
    scales: tuple[int, ...], pushed: list[tuple[float, float]]
) -> None:
    stream = _stream(scales)
    for x, m in pushed:
        stream.push_deferred(x, m, learn=True)
    cap = max(scales)
    assert stream.to_dict()["ring"] == [[x, m] for x, m in pushed[-cap:]]
    for i, s in enumerate(scales):
        sx, sm = stream.window(i)
        tail = pushed[-s:]
        assert math.isclose(sx, sum(x for x, _ in tail), rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(sm, sum(m for _, m in tail), rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=60, deadline=None)
@given(scales=st.sampled_from(SCALES), pushed=pairs, more=pairs)
def test_a_loaded_state_continues_as_the_stream_that_wrote_it(
    scales: tuple[int, ...], pushed: list[tuple[float, float]], more: list[tuple[float, float]]
) -> None:
    original = _stream(scales)
    for x, m in pushed:
        original.push_deferred(x, m, learn=True)
    restored = _stream(scales)
    restored.load(original.to_dict())
    assert restored.to_dict() == original.to_dict()
    for x, m in more:
        a = original.push_deferred(x, m, learn=True).resolve()
        b = restored.push_deferred(x, m, learn=True).resolve()
        assert a == b
    assert restored.to_dict() == original.to_dict()
    extra = [(3.0, 1.0), (0.0, 0.5)]
    assert restored.peek(extra) == original.peek(extra)


def test_a_longer_saved_ring_keeps_its_newest_buckets() -> None:
    stream = _stream((2, 3))
    state = stream.to_dict()
    state["ring"] = [[float(i), 1.0] for i in range(7)]
    stream.load(state)
    assert stream.to_dict()["ring"] == [[4.0, 1.0], [5.0, 1.0], [6.0, 1.0]]
    stream.push_deferred(9.0, 1.0, learn=True)
    assert stream.to_dict()["ring"] == [[5.0, 1.0], [6.0, 1.0], [9.0, 1.0]]


@pytest.mark.parametrize("k", [1, 2, 5])
def test_peek_drops_the_oldest_buckets_the_open_ones_push_out(k: int) -> None:
    stream = _stream((4,))
    for i in range(10):  # the ring wraps more than once
        stream.push_deferred(float(i), 1.0, learn=False)
    extra = [(20.0, 1.0)] * k
    test = stream.peek(extra)
    kept = [float(i) for i in range(10)][-(4 - k) :] if k < 4 else []
    assert test.observed == pytest.approx(sum(kept) + 20.0 * k)
    assert test.expected == pytest.approx(len(kept) + k)


@settings(max_examples=80, deadline=None)
@given(scales=st.sampled_from(SCALES), pushed=pairs, every=st.integers(2, 5))
def test_each_close_resolves_alike_whether_or_not_earlier_ones_were_read(
    scales: tuple[int, ...], pushed: list[tuple[float, float]], every: int
) -> None:
    """A stream keeps one pending test, reset by every close: a result read late (before the
    next close) is the one read at once, and reading it changes nothing that follows."""
    eager, lazy = _stream(scales), _stream(scales)
    for n, (x, m) in enumerate(pushed):
        now = eager.push_deferred(x, m, learn=True).resolve()
        pending = lazy.push_deferred(x, m, learn=True)
        assert pending.bound() >= now.score - 1e-9
        if now.score > 0.0:
            assert now.observed > now.expected
        if n % every == 0:
            assert pending.resolve() == now
            assert pending.resolve() is pending.resolve()  # computed once per close
    assert lazy.to_dict() == eager.to_dict()
