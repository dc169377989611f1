"""Reading the watch list file (YAML, or a drill ``targets.json``) and writing YAML."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from stormwatch_shared.targets import Target, TargetsError, load_targets

from stormwatch_listener.domain.watchlist import (
    WatchList,
    WatchListError,
    from_targets,
    monitored,
    parse_watch_list,
    to_targets,
)

log = logging.getLogger("stormwatch.listener.watchlist")


@dataclass
class Loaded:
    watch: WatchList
    targets: list[Target]
    entries: list[Any] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_watch_list(path: Path) -> WatchList:
    if path.suffix.lower() == ".json":
        try:
            return from_targets(load_targets(path))
        except TargetsError as exc:
            raise WatchListError(str(exc)) from exc
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WatchListError(f"{path}: watch list not found") from exc
    except yaml.YAMLError as exc:
        raise WatchListError(f"{path}: not valid YAML ({exc})") from exc
    return parse_watch_list(data, str(path))


def load(path: Path, today: date) -> Loaded:
    """The watch list and the targets that may be monitored today; each ambassador left
    out for lack of consent is logged by id."""
    watch = read_watch_list(path)
    entries, skipped = monitored(watch, today)
    for reason in skipped:
        log.warning("Botschafter:in nicht überwacht / ambassador not monitored: %s", reason)
    return Loaded(watch, to_targets(entries), entries, skipped)


def dump_yaml(watch: WatchList) -> str:
    data = watch.model_dump(mode="json", exclude_defaults=True)
    header = (
        "# stormwatch watch list. Ambassadors are monitored only with consent recorded\n"
        "# (consent: {recorded: YYYY-MM-DD}); imported entries have none yet.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
