"""The monthly read budget for pay-per-use APIs (X bills every post it returns).

Pure: the month is derived from a timestamp passed in, so the reset at the month boundary
is testable without waiting for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def month_key(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def next_month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    if now.month == 12:
        return datetime(now.year + 1, 1, 1, tzinfo=UTC)
    return datetime(now.year, now.month + 1, 1, tzinfo=UTC)


@dataclass
class BudgetState:
    limit: int
    """Posts that may be read per calendar month (UTC); 0 means no budget is enforced."""
    month: str
    used: int = 0

    def roll(self, now: datetime) -> None:
        """A new month starts with a fresh budget."""
        key = month_key(now)
        if key != self.month:
            self.month = key
            self.used = 0

    @property
    def exhausted(self) -> bool:
        return self.limit > 0 and self.used >= self.limit

    @property
    def remaining(self) -> int | None:
        """Reads left this month; None when no budget is enforced."""
        if self.limit <= 0:
            return None
        return max(0, self.limit - self.used)

    def record(self, reads: int) -> None:
        """Count reads that happened; a read the API already billed is counted even when it
        overshoots the limit (e.g. a search page has a minimum size), so the report is true."""
        self.used += reads
