"""Reading drill scenarios (``mentions.jsonl`` + ``targets.json``).

A malformed line is reported with file and line number, counted and skipped: one broken
record in two weeks of data must not stop a drill.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import ValidationError

from stormwatch_shared.events import Mention
from stormwatch_shared.targets import Target, load_targets


@dataclass
class ReadProblems:
    count: int = 0
    messages: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < 100:
            self.messages.append(message)


def iter_mentions(path: Path, problems: ReadProblems) -> Iterator[Mention]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield Mention.model_validate(orjson.loads(raw))
            except orjson.JSONDecodeError as exc:
                problems.add(f"{path}:{lineno}: invalid JSON ({exc})")
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                problems.add(f"{path}:{lineno}: {where}: {first['msg']}")


def iter_in_event_order(path: Path, problems: ReadProblems) -> Iterator[Mention]:
    """Stream a scenario in file order, which the format guarantees is event-time order.

    Streaming keeps memory flat for large replays. A line older than its predecessor is
    still replayed (nothing is dropped) but reported, because the listener and the
    in-process replay both follow file order and so still agree with each other.
    """
    newest = None
    for mention in iter_mentions(path, problems):
        if newest is not None and mention.created_at < newest:
            problems.add(
                f"{path}: {mention.id} ({mention.created_at.isoformat()}) is older than an "
                "earlier line; scenario files must be sorted by created_at"
            )
        else:
            newest = mention.created_at
        yield mention


@dataclass(frozen=True)
class Scenario:
    directory: Path
    targets: list[Target]

    @property
    def mentions_path(self) -> Path:
        return self.directory / "mentions.jsonl"


def open_scenario(directory: Path) -> Scenario:
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: scenario folder not found")
    if not (directory / "mentions.jsonl").is_file():
        raise FileNotFoundError(f"{directory}: mentions.jsonl missing (see scenarios/FORMAT.md)")
    return Scenario(directory, load_targets(directory / "targets.json"))
