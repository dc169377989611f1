from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from stormwatch_shared.events import Mention


class MentionSource(Protocol):
    name: str

    def mentions(self) -> AsyncIterator[Mention]:
        """Yield mentions in the order the source delivers them (event time for replays)."""
        ...
