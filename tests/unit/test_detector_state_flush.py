"""When detector states are written and offsets committed: the flush bookkeeping of the
state store, on a fake clock (the service passes ``time.monotonic()``)."""

from __future__ import annotations

import pytest
from stormwatch_alerting.domain.detector import Detector
from stormwatch_alerting.domain.types import Observation
from stormwatch_alerting.state import DetectorStateStore

T0 = 1_773_000_000.0


def _store_with(*targets: tuple[str, int, int]) -> tuple[Detector, DetectorStateStore]:
    """A store whose detector saw one mention per (target, partition, offset)."""
    detector = Detector()
    store = DetectorStateStore(detector, "127.0.0.1:1", "changelog")
    for i, (target, partition, offset) in enumerate(targets):
        store.consumed(partition, offset)
        detector.observe(
            Observation(
                target_id=target,
                at=T0 + i,
                mention_id=f"m{i}",
                author_id=f"u{i}",
                followers=1,
                negative=0.0,
                label="neutral",
            )
        )
        store.mark(target, partition, offset)
    return detector, store


@pytest.mark.parametrize(
    ("last_flush", "now", "force", "due"),
    [
        (None, 10.0, False, True),  # never flushed: the first batch flushes
        (10.0, 10.5, False, False),  # inside the interval: wait
        (10.0, 11.0, False, True),  # the interval has passed
        (10.0, 10.1, True, True),  # stopping: always
    ],
)
def test_flush_due_follows_the_interval(
    last_flush: float | None, now: float, force: bool, due: bool
) -> None:
    _, store = _store_with(("paula", 0, 5))
    if last_flush is not None:
        store.committed(store.dirty_targets(), last_flush)
        store.mark("paula", 0, 6)
    assert store.flush_due(now, 1.0, force=force) is due


def test_nothing_to_flush_is_never_due() -> None:
    store = DetectorStateStore(Detector(), "127.0.0.1:1", "changelog")
    assert not store.flush_due(100.0, 1.0, force=True)


def test_dirty_targets_are_each_changed_target_once_until_committed() -> None:
    _, store = _store_with(("paula", 0, 1), ("jonas", 1, 7), ("paula", 0, 2))
    assert store.dirty_targets() == ["jonas", "paula"]
    assert store.dirty_targets() == ["jonas", "paula"]  # a failed flush writes them again
    store.committed(["jonas", "paula"], 1.0)
    assert store.dirty_targets() == []


def test_a_target_changed_again_stays_dirty() -> None:
    _, store = _store_with(("paula", 0, 1))
    store.committed(["paula"], 1.0)
    store.mark("paula", 0, 2)
    assert store.dirty_targets() == ["paula"]


def test_rewind_points_are_the_first_uncommitted_offsets() -> None:
    _, store = _store_with(("paula", 0, 5), ("jonas", 1, 9), ("paula", 0, 6))
    assert store.rewind_points() == {0: 5, 1: 9}
    assert store.rewind_points() == {}  # forgotten once used


def test_commit_offsets_follow_the_records_handled_not_the_consumer() -> None:
    """The offset after the last record handled per partition with uncommitted work: a batch
    the consumer has fetched but not handed over yet must not be committed."""
    _, store = _store_with(("paula", 0, 5), ("jonas", 1, 9), ("paula", 0, 6))
    store.consumed(2, 40)  # a record that was only dead-lettered still counts as handled
    assert store.commit_offsets() == {0: 7, 1: 10, 2: 41}
    store.committed(store.dirty_targets(), 1.0)
    assert store.commit_offsets() == {}
    store.consumed(1, 10)
    assert store.commit_offsets() == {1: 11}
    store.revoke([1])
    assert store.commit_offsets() == {}


def test_commit_clears_the_rewind_points() -> None:
    _, store = _store_with(("paula", 0, 5))
    store.committed(store.dirty_targets(), 1.0)
    assert store.rewind_points() == {}
    assert not store.flush_due(5.0, 1.0)


def test_revoke_drops_unflushed_targets_of_that_partition_only() -> None:
    """Their state is ahead of the committed offset: the partition's next owner rebuilds it
    from the changelog, so keeping it here would count those mentions twice on return."""
    detector, store = _store_with(("paula", 0, 5), ("jonas", 1, 9))
    store.revoke([0])
    assert detector.targets() == ["jonas"]
    assert not store.already_applied("paula", 0, 5)
    assert store.already_applied("jonas", 1, 9)
    assert store.dirty_targets() == ["jonas"]
    assert store.rewind_points() == {1: 9}


def test_revoke_keeps_flushed_targets() -> None:
    detector, store = _store_with(("paula", 0, 5))
    store.committed(store.dirty_targets(), 1.0)
    store.revoke([0])
    assert detector.targets() == ["paula"]


def test_tombstoned_target_is_not_written_back() -> None:
    detector, store = _store_with(("paula", 0, 5))
    store.apply(None, b"paula")
    assert detector.targets() == []
    assert store.dirty_targets() == []
