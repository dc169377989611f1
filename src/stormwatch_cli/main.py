"""The one ``stormwatch`` command line."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

EPILOG = """\
Beispiele / examples:
  stormwatch topics ensure                      Kafka-Topics anlegen / create topics
  stormwatch run sentiment                      einen Dienst starten / run one service
  stormwatch replay examples/drill --report out.json
                                                Szenario ohne Kafka auswerten / replay offline
  stormwatch score --input texts.txt --output scores.jsonl
  stormwatch detect-series counts.csv scored.csv

Settings come from environment variables (STORMWATCH_KAFKA_*, LISTENER_*, SENTIMENT_*,
ALERTING_*); see the README of each service.
"""

SERVICES = ("listener", "sentiment", "alerting")


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"stormwatch_{args.service}.app")
    module.run_service()
    return 0


def _topics(args: argparse.Namespace) -> int:
    from stormwatch_shared.kafka import ensure_topics
    from stormwatch_shared.settings import KafkaSettings, RetentionSettings, load_settings
    from stormwatch_shared.topics import topic_specs

    kafka = load_settings(KafkaSettings)
    retention = load_settings(RetentionSettings)
    partitions = args.partitions or kafka.partitions
    altered: list[str] = []
    try:
        created = ensure_topics(
            kafka,
            topic_specs(
                partitions,
                mentions_days=retention.mentions_days,
                alerts_days=retention.alerts_days,
            ),
            altered=altered,
        )
    except Exception as exc:
        print(
            f"Kafka nicht erreichbar / Kafka unreachable at {kafka.bootstrap_servers}: {exc}\n"
            "Läuft der Broker? / Is the broker running? (make kafka-start)",
            file=sys.stderr,
        )
        return 1
    names = ", ".join(created) if created else "keine / none"
    print(f"Topics angelegt / created: {names}")
    if altered:
        print(f"Konfiguration angeglichen / configs aligned: {', '.join(altered)}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from stormwatch_cli.replay import replay

    try:
        result = replay(args.scenario, sensitivity=args.sensitivity, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        print(f"Fehler / error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    for problem in result["problems"]:
        print(f"übersprungen / skipped: {problem}", file=sys.stderr)
    alerts = result["alerts"]
    print(
        f"{result['counts']['mentions']} Erwähnungen / mentions, {len(alerts)} Alarme / alerts"
        + (f" -> {args.report}" if args.report else ""),
        file=sys.stderr,
    )
    for a in alerts:
        print(f"  {a['raised_at']}  {a['target']:<12} {a['level']}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stormwatch",
        description="Frühwarnung für Shitstorms / early warning for social-media crises.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one service (listener, sentiment, alerting)")
    run.add_argument("service", choices=SERVICES)
    run.set_defaults(func=_run)

    topics = sub.add_parser("topics", help="manage Kafka topics")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True)
    ensure = topics_sub.add_parser(
        "ensure", help="create missing topics with partitions, retention and compaction"
    )
    ensure.add_argument("--partitions", type=int, default=None, help="default: 6")
    ensure.set_defaults(func=_topics)

    rp = sub.add_parser(
        "replay",
        help="score and detect a scenario in one process, on event time, without Kafka",
        epilog="example: stormwatch replay examples/drill --report out/report.json",
    )
    rp.add_argument("scenario", type=Path, help="folder with mentions.jsonl and targets.json")
    rp.add_argument("--report", type=Path, help="write the JSON report here (default: stdout)")
    rp.add_argument("--sensitivity", choices=("calm", "normal", "eager"), default="normal")
    rp.add_argument("--quiet", action="store_true", help="no progress output")
    rp.set_defaults(func=_replay)

    for module_name in (
        "stormwatch_sentiment.cli",
        "stormwatch_alerting.series_cli",
        "stormwatch_alerting.cli",
        "stormwatch_listener.cli",
        "stormwatch_cli.forget",
        "stormwatch_cli.dlq",
    ):
        module = importlib.import_module(module_name)
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
