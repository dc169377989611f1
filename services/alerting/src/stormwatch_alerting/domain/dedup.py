"""Bounded memory of recently seen ids: turns at-least-once delivery into effectively once.

Bounded because a process runs for months; an id older than ``capacity`` newer ids will
not be redelivered by Kafka in practice (redeliveries come from the last uncommitted batch).
"""

from __future__ import annotations

from collections import OrderedDict


class SeenIds:
    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is seen (and remember it), False for a repeat."""
        if key in self._ids:
            self._ids.move_to_end(key)
            return False
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)
