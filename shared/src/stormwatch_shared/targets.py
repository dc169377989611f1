"""The watch list and the rule that decides which targets a mention concerns.

Rule (drill format): a mention concerns a target when its text contains one of the
target's keywords, case-insensitively (a hashtag ``#KlinikumNordstadt`` counts), or one of
its handles. Handles must not match inside longer handles (``@paula`` vs ``@paula2``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["organisation", "ambassador"] = "organisation"
    name: str = ""
    keywords: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()


class TargetsError(ValueError):
    pass


def load_targets(path: Path) -> list[Target]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise TargetsError(f"{path}: watch list not found") from exc
    except orjson.JSONDecodeError as exc:
        raise TargetsError(f"{path}: not valid JSON ({exc})") from exc
    try:
        targets = TypeAdapter(list[Target]).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TargetsError(f"{path}: entry {where}: {first['msg']}") from exc
    ids = [t.id for t in targets]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise TargetsError(f"{path}: duplicate target ids {dupes}")
    return targets


class TargetMatcher:
    """Compiled once per watch list; matching runs on every mention, so it is one regex scan."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = {t.id: t for t in targets}
        alternatives: list[str] = []
        self._owner: dict[str, list[str]] = {}
        for t in targets:
            for kw in t.keywords:
                self._add(kw, t.id, alternatives, handle=False)
            for h in t.handles:
                self._add(h, t.id, alternatives, handle=True)
        alternatives.sort(key=len, reverse=True)
        self._regex = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    def _add(self, term: str, target_id: str, alternatives: list[str], *, handle: bool) -> None:
        term = term.strip()
        if not term:
            return
        key = term.casefold()
        if key not in self._owner:
            self._owner[key] = []
            tail = r"(?![A-Za-z0-9_])" if handle else ""
            alternatives.append(re.escape(term) + tail)
        if target_id not in self._owner[key]:
            self._owner[key].append(target_id)

    def match(self, text: str) -> list[str]:
        if self._regex is None:
            return []
        found: list[str] = []
        for m in self._regex.finditer(text):
            for tid in self._owner.get(m.group(0).casefold(), ()):
                if tid not in found:
                    found.append(tid)
        order = list(self.targets)
        return sorted(found, key=order.index)

    def ids(self) -> Iterable[str]:
        return self.targets.keys()
