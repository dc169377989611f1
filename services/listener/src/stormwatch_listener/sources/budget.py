"""A persistent monthly read budget (X is pay-per-use: every post returned is billed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from stormwatch_listener import metrics
from stormwatch_listener.domain.budget import BudgetState, month_key, next_month_start
from stormwatch_listener.sources.base import BudgetExhausted
from stormwatch_listener.state import StateStore

log = logging.getLogger("stormwatch.listener.budget")


class BudgetMeter:
    def __init__(
        self, store: StateStore, source: str, limit: int, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.source = source
        self.clock = clock
        month = month_key(clock())
        self.state = BudgetState(limit=limit, month=month, used=store.budget_used(source, month))
        metrics.BUDGET_LIMIT.labels(source).set(limit)
        metrics.BUDGET_USED.labels(source).set(self.state.used)
        self._warned = False

    def check(self) -> None:
        """Raise ``BudgetExhausted`` when no read is left this month."""
        now = self.clock()
        self.state.roll(now)
        metrics.BUDGET_USED.labels(self.source).set(self.state.used)
        if self.state.exhausted:
            raise BudgetExhausted(next_month_start(now), self.state.used, self.state.limit)

    def remaining(self) -> int | None:
        self.state.roll(self.clock())
        return self.state.remaining

    def record(self, reads: int) -> None:
        if reads <= 0:
            return
        self.state.roll(self.clock())
        self.state.record(reads)
        self.store.save_budget(self.source, self.state.month, self.state.used)
        metrics.BUDGET_USED.labels(self.source).set(self.state.used)
        limit = self.state.limit
        if limit and not self._warned and self.state.used >= 0.8 * limit:
            self._warned = True
            log.warning(
                "%s: 80 %% des Monatsbudgets verbraucht (%d/%d) / 80%% of the monthly read "
                "budget used",
                self.source,
                self.state.used,
                limit,
            )
