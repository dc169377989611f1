"""``stormwatch watchlist import|check``: the watch list from the command line."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stormwatch_listener.domain.watchlist import WatchListError, monitored, x_rules


def _import(args: argparse.Namespace) -> int:
    from stormwatch_listener.watchlist import dump_yaml, read_watch_list

    try:
        watch = read_watch_list(args.targets)
    except WatchListError as exc:
        print(f"Fehler / error: {exc}", file=sys.stderr)
        return 2
    if args.output.exists() and not args.force:
        print(f"Fehler / error: {args.output} exists (use --force)", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dump_yaml(watch), encoding="utf-8")
    print(
        f"{len(watch.organisations)} Organisation(en), {len(watch.ambassadors)} "
        f"Botschafter:innen -> {args.output}\n"
        "Einwilligungen fehlen noch / consent still to be recorded for every ambassador.",
        file=sys.stderr,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from stormwatch_listener.watchlist import read_watch_list

    try:
        watch = read_watch_list(args.watchlist)
        entries, skipped = monitored(watch, datetime.now(UTC).date())
        rules = x_rules(entries)
    except WatchListError as exc:
        print(f"Fehler / error: {exc}", file=sys.stderr)
        return 2
    print(f"OK: {len(entries)} überwacht / monitored, {len(rules)} X-Regeln / X rules")
    for reason in skipped:
        print(f"  nicht überwacht / not monitored: {reason}")
    return 0


def register(subparsers: Any) -> None:
    wl = subparsers.add_parser("watchlist", help="import or check the live watch list (YAML)")
    sub = wl.add_subparsers(dest="watchlist_command", required=True)
    imp = sub.add_parser(
        "import",
        help="convert a drill targets.json into a watch-list YAML",
        epilog="example: stormwatch watchlist import examples/drill/targets.json watch.yaml",
    )
    imp.add_argument("targets", type=Path)
    imp.add_argument("output", type=Path)
    imp.add_argument("--force", action="store_true", help="overwrite OUTPUT")
    imp.set_defaults(func=_import)
    chk = sub.add_parser("check", help="validate a watch list and show who is monitored")
    chk.add_argument("watchlist", type=Path)
    chk.set_defaults(func=_check)
