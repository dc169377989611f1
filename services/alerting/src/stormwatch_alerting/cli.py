"""``stormwatch drill``: rehearse the whole chain with a scenario, marked as a drill.

The scenario's mentions go into the live pipeline through the listener's own publishing
path with ``drill=True``: every alert, SMS and email that follows carries "ÜBUNG / DRILL",
metrics carry ``drill="true"``, and ``--report`` prints who was paged when and who
acknowledged after how long (read from the delivery state database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


async def _publish(scenario: Path, speed: float | None) -> dict[str, int]:
    from stormwatch_listener.app import publish_source
    from stormwatch_listener.sources.replay import ReplaySource
    from stormwatch_shared.service import make_broker
    from stormwatch_shared.settings import KafkaSettings, load_settings
    from stormwatch_shared.targets import TargetMatcher, load_targets
    from stormwatch_shared.topics import MENTIONS_RAW

    kafka = load_settings(KafkaSettings)
    targets = scenario / "targets.json"
    matcher = TargetMatcher(load_targets(targets))
    broker = make_broker(kafka, "stormwatch-drill")
    await broker.start()
    try:
        return await publish_source(
            broker, ReplaySource(scenario, speed), matcher, kafka.topic(MENTIONS_RAW), drill=True
        )
    finally:
        await broker.stop()


def drill_report(state_db: Path) -> dict[str, Any]:
    """The drill report from a state database, without starting the delivery service."""
    from stormwatch_alerting.delivery.store import Store

    store = Store(state_db)
    try:
        report = []
        for group in store.all_groups(drill=True):
            rows = store.audit_rows(group.alert_id)
            report.append(
                {
                    "alert_id": group.alert_id,
                    "target": group.target_id,
                    "level": group.level,
                    "opened_at": group.opened_at.isoformat(),
                    "status": group.status,
                    "pages": [
                        {"at": r["at"], "who": r["recipient"], "channel": r["channel"]}
                        for r in rows
                        if r["action"] == "notify" and r["outcome"] == "sent"
                    ],
                    "acknowledged_by": group.acked_by,
                    "acknowledged_after_s": (group.acked_at - group.opened_at).total_seconds()
                    if group.acked_at
                    else None,
                }
            )
        return {"alerts": report}
    finally:
        store.close()


def _drill(args: argparse.Namespace) -> int:
    if args.report_only is None:
        if not (args.scenario / "mentions.jsonl").exists():
            print(
                f"Fehler / error: {args.scenario}/mentions.jsonl fehlt / missing", file=sys.stderr
            )
            return 2
        try:
            counts = asyncio.run(_publish(args.scenario, args.speed))
        except Exception as exc:
            print(f"Übung abgebrochen / drill failed: {exc}", file=sys.stderr)
            return 1
        print(
            f"ÜBUNG / DRILL: {counts['published']} Erwähnungen veröffentlicht / mentions published",
            file=sys.stderr,
        )
        return 0
    print(json.dumps(drill_report(args.report_only), indent=2, ensure_ascii=False))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "drill",
        help="inject a scenario into the live pipeline as a drill (ÜBUNG / DRILL)",
        epilog="examples: stormwatch drill examples/drill | "
        "stormwatch drill --report var/alerting-state.sqlite3",
    )
    p.add_argument(
        "scenario",
        type=Path,
        nargs="?",
        default=Path("examples/drill"),
        help="folder with mentions.jsonl and targets.json",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        help="replay speed factor (e.g. 60 = one hour per minute); default: at once",
    )
    p.add_argument(
        "--report",
        dest="report_only",
        type=Path,
        default=None,
        metavar="STATE_DB",
        help="print the drill report (pages, acknowledgements) from this state DB",
    )
    p.set_defaults(func=_drill)
