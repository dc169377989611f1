"""Replies inherit the targets of the post they answer.

Why: in a storm, people reply to the post that started it (a news item, the hospital's
statement) without naming the hospital again: "Wer übernimmt hier eigentlich Verantwortung?
Das Personal war respektlos." Keyword matching alone drops exactly these replies, the
pile-on the detector's gates look for. A reply therefore concerns every target its parent
concerned, and a reply to such a reply as well, as long as the parent was seen recently.

Bounded on purpose: ids are remembered for ``max_age_s`` of event time (default three days;
a reply to a week-old post is no longer the same conversation) and at most ``capacity``
of them (oldest first out), so a busy stream cannot grow the listener's memory without
limit. Only ids and target ids are kept, no text or author.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

DAY_S = 86_400.0


class ThreadTargets:
    def __init__(self, capacity: int = 200_000, max_age_s: float = 3 * DAY_S) -> None:
        if capacity < 0 or max_age_s < 0:
            raise ValueError("capacity and max_age_s must not be negative")
        self.capacity = capacity
        self.max_age_s = max_age_s
        self._seen: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def resolve(
        self,
        mention_id: str,
        in_reply_to: str | None,
        at: float,
        matched: Sequence[str],
        order: Iterable[str],
    ) -> list[str]:
        """Targets of a mention: those its text matched plus its parent's; remembers them.

        ``at`` is the mention's event time (epoch seconds), ``order`` the watch list's target
        ids in order (read only when a reply adds targets), which the result keeps so events
        come out the same on every run.
        """
        found = list(matched)
        if in_reply_to is not None:
            parent = self._seen.get(in_reply_to)
            if parent is not None and 0.0 <= at - parent[0] <= self.max_age_s:
                extra = [t for t in parent[1] if t not in found]
                if extra:
                    rank = {t: i for i, t in enumerate(order)}
                    found = sorted({*found, *extra}, key=lambda t: rank.get(t, len(rank)))
        if found and self.capacity:
            self._seen[mention_id] = (at, tuple(found))
            self._seen.move_to_end(mention_id)
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
        return found
