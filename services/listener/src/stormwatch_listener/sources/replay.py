"""Replays a drill scenario on event time, at full speed or scaled to wall-clock time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from stormwatch_shared.events import Mention
from stormwatch_shared.scenario import ReadProblems, iter_in_event_order


class ReplaySource:
    name = "replay"

    def __init__(
        self,
        path: Path,
        speed: float | None = None,
        problems: ReadProblems | None = None,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self.path = path / "mentions.jsonl" if path.is_dir() else path
        self.speed = speed
        self.problems = problems if problems is not None else ReadProblems()
        self._sleep = sleep

    async def mentions(self) -> AsyncIterator[Mention]:
        items = iter_in_event_order(self.path, self.problems)
        previous = None
        for i, mention in enumerate(items):
            if self.speed is not None and previous is not None:
                gap = (mention.created_at - previous).total_seconds() / self.speed
                if gap > 0:
                    await self._sleep(gap)  # type: ignore[misc]
            elif i % 500 == 0:
                await asyncio.sleep(0)
            previous = mention.created_at
            yield mention
