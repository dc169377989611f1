"""Reconnect delays and the monthly budget: pure functions, exact sequences."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from stormwatch_listener.domain.backoff import X_POLICY, Backoff
from stormwatch_listener.domain.budget import BudgetState, month_key, next_month_start

pytestmark = pytest.mark.sources


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("network", [0.25, 0.5, 0.75, 1.0, 1.25]),
        ("http", [5, 10, 20, 40, 80, 160, 320, 320]),
        ("rate_limited", [60, 120, 240, 480, 960, 960]),
    ],
)
def test_x_documented_schedules(kind: str, expected: list[float]) -> None:
    b = Backoff(X_POLICY)
    assert [b.next_delay(kind) for _ in expected] == expected  # type: ignore[arg-type]


def test_network_caps_at_16_s_and_reset_starts_over() -> None:
    b = Backoff()
    delays = [b.next_delay("network") for _ in range(70)]
    assert max(delays) == 16.0 and delays[63] == 16.0 and delays[62] == 15.75
    b.reset()
    assert b.next_delay("network") == 0.25 and b.next_delay("http") == 5


def test_kinds_are_independent_and_retry_after_wins_when_longer() -> None:
    b = Backoff()
    assert b.next_delay("http") == 5
    assert b.next_delay("rate_limited", retry_after_s=30) == 60
    assert b.next_delay("rate_limited", retry_after_s=900) == 900
    assert b.next_delay("http") == 10


@pytest.mark.parametrize(
    ("now", "key", "start"),
    [
        (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), "2026-03", datetime(2026, 4, 1, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), "2026-12", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_months(now: datetime, key: str, start: datetime) -> None:
    assert month_key(now) == key and next_month_start(now) == start


def test_budget_counts_overshoot_and_rolls_over() -> None:
    state = BudgetState(limit=100, month="2026-03")
    state.record(95)
    assert state.remaining == 5 and not state.exhausted
    state.record(10)  # a search page of at least 10 posts: billed, so counted
    assert state.exhausted and state.remaining == 0 and state.used == 105
    state.roll(datetime(2026, 4, 1, tzinfo=UTC))
    assert state.used == 0 and not state.exhausted
    unlimited = BudgetState(limit=0, month="2026-03")
    unlimited.record(10**6)
    assert unlimited.remaining is None and not unlimited.exhausted
