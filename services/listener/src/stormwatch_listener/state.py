"""The listener's small persistent state: resume cursors, the seen-set, read budgets.

SQLite because it is one local file with atomic writes: a cursor is either the old or the
new one after a crash, never half of each. The seen-set expires entries (a post older than
the longest replay window can no longer come back), so the file stays small.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, cursor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS seen_expires ON seen (expires);
CREATE TABLE IF NOT EXISTS budget (source TEXT, month TEXT, used INTEGER NOT NULL,
                                   PRIMARY KEY (source, month));
"""


class StateStore:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def load_cursor(self, source: str) -> str | None:
        row = self._db.execute("SELECT cursor FROM cursors WHERE source=?", (source,)).fetchone()
        return None if row is None else str(row[0])

    def save_cursor(self, source: str, cursor: str) -> None:
        self._db.execute(
            "INSERT INTO cursors(source, cursor) VALUES(?, ?) "
            "ON CONFLICT(source) DO UPDATE SET cursor=excluded.cursor",
            (source, cursor),
        )

    def seen(self, ids: Iterable[str], now: float) -> set[str]:
        ids = list(ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT id FROM seen WHERE expires > ? AND id IN ({marks})",  # noqa: S608
                (now, *chunk),
            )
            found.update(r[0] for r in rows)
        return found

    def mark_seen(self, ids: Iterable[str], expires: float) -> None:
        self._db.executemany(
            "INSERT INTO seen(id, expires) VALUES(?, ?) "
            "ON CONFLICT(id) DO UPDATE SET expires=excluded.expires",
            [(i, expires) for i in ids],
        )

    def purge(self, now: float) -> int:
        return self._db.execute("DELETE FROM seen WHERE expires <= ?", (now,)).rowcount

    def budget_used(self, source: str, month: str) -> int:
        row = self._db.execute(
            "SELECT used FROM budget WHERE source=? AND month=?", (source, month)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def save_budget(self, source: str, month: str, used: int) -> None:
        self._db.execute(
            "INSERT INTO budget(source, month, used) VALUES(?, ?, ?) "
            "ON CONFLICT(source, month) DO UPDATE SET used=excluded.used",
            (source, month, used),
        )
