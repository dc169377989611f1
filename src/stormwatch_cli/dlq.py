"""``stormwatch dlq inspect|replay TOPIC``: look at dead letters, fix them, send them again.

A dead letter (``<topic>.dlq``) keeps the original bytes, the reason and where they came
from. The operator's loop is: ``inspect`` to see what failed and why; if the producer was
wrong, fix it and ``replay`` the letters unchanged; if the messages themselves were wrong,
``inspect --json > letters.json``, edit the payloads there and ``replay --fix-file
letters.json``. A replay writes each payload to its source topic with its original key, so
it lands on the partition of its target again; consumers deduplicate on ``event_id``, so
replaying a letter twice does no harm.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import orjson

EXAMPLES = """\
examples:
  stormwatch dlq inspect mentions.raw.v1
  stormwatch dlq inspect mentions.raw.v1 --json > letters.json
  stormwatch dlq replay mentions.raw.v1 --offset 3 --offset 4 --dry-run
  stormwatch dlq replay mentions.raw.v1 --fix-file letters.json
"""

PREVIEW_CHARS = 120


def dlq_topic(topic: str, prefix: str) -> str:
    """Accepts the source topic or the dead-letter topic, with or without the prefix."""
    name = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    return name if prefix and name.startswith(prefix) else f"{prefix}{name}"


def read_letters(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Every dead letter currently in ``topic``, oldest first, each with its own position."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            raise LookupError(f"topic {topic} does not exist")
        parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        remaining = {tp for tp in parts if end[tp] > 0}
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records.extend(r for r in batch if r.offset < end[tp])
            remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
        if remaining:
            raise TimeoutError(f"could not read {topic} to its end within {timeout_s:.0f} s")
    finally:
        consumer.close()
    return [_letter(r) for r in sorted(records, key=lambda r: (r.partition, r.offset))]


def _letter(record: Any) -> dict[str, Any]:
    """The dead letter with its own position; an unreadable one is shown, not skipped."""
    try:
        data = orjson.loads(record.value)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (orjson.JSONDecodeError, ValueError, TypeError):
        data = {
            "reason": "(dead letter itself unreadable)",
            "payload": bytes(record.value or b"").decode("utf-8", "replace"),
        }
    return {
        "dlq_partition": record.partition,
        "dlq_offset": record.offset,
        "service": data.get("service"),
        "occurred_at": data.get("occurred_at"),
        "reason": data.get("reason"),
        "source_topic": data.get("source_topic"),
        "partition": data.get("partition"),
        "offset": data.get("offset"),
        "key": data.get("key"),
        "payload": data.get("payload"),
    }


def _preview(text: str | None) -> str:
    text = (text or "").replace("\n", "\\n")
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + f"… ({len(text)} chars)"


def _select(letters: list[dict[str, Any]], offsets: list[int] | None) -> list[dict[str, Any]]:
    if not offsets:
        return letters
    wanted = set(offsets)
    chosen = [x for x in letters if x["dlq_offset"] in wanted]
    missing = wanted - {x["dlq_offset"] for x in chosen}
    if missing:
        raise LookupError(f"no dead letter at offset(s) {sorted(missing)}")
    return chosen


def _kafka() -> Any:
    from stormwatch_shared.settings import KafkaSettings, load_settings

    return load_settings(KafkaSettings)


def _inspect(args: argparse.Namespace) -> int:
    kafka = _kafka()
    topic = dlq_topic(args.topic, kafka.topic_prefix)
    try:
        letters = _select(read_letters(kafka.bootstrap_servers, topic), args.offset)
    except (LookupError, TimeoutError) as exc:
        print(f"Fehler / error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(letters, indent=2, ensure_ascii=False))
        return 0
    print(f"{topic}: {len(letters)} Dead Letter(s)")
    for x in letters:
        print(
            f"#{x['dlq_offset']}  {x['occurred_at'] or '?'}  {x['service'] or '?'}  "
            f"von / from {x['source_topic']}[{x['partition']}]@{x['offset']}  key={x['key']!r}"
        )
        print(f"    Grund / reason: {x['reason']}")
        print(f"    Inhalt / payload: {_preview(x['payload'])}")
    return 0


def _load_fixes(path: Path) -> dict[int, str]:
    """Payloads by dead-letter offset, from ``inspect --json`` output (edited) or JSON lines
    of ``{"dlq_offset": N, "payload": ...}``; a payload may be a string or a JSON value."""
    text = path.read_text(encoding="utf-8")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError:
        entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(entries, dict):
        entries = [entries]
    fixes: dict[int, str] = {}
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "dlq_offset" not in entry or "payload" not in entry:
            raise ValueError(f"{path}: entry {n} needs dlq_offset and payload")
        payload = entry["payload"]
        fixes[int(entry["dlq_offset"])] = (
            payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        )
    return fixes


def check_payload(source_topic: str, payload: bytes) -> str | None:
    """Why the consumer of ``source_topic`` would refuse ``payload`` again, or None."""
    from stormwatch_shared.codec import DecodeError, decode
    from stormwatch_shared.events import MentionReceived, MentionScored

    try:
        if source_topic.endswith("mentions.raw.v1"):
            decode(payload, MentionReceived)
        elif source_topic.endswith("mentions.scored.v1"):
            decode(payload, MentionScored)
        elif source_topic.endswith("alerts.v1"):
            from stormwatch_alerting.app import decode_alert

            decode_alert(payload)
    except DecodeError as exc:
        return str(exc)
    return None


def _replay(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer

    kafka = _kafka()
    topic = dlq_topic(args.topic, kafka.topic_prefix)
    try:
        fixes = _load_fixes(args.fix_file) if args.fix_file else {}
        offsets = sorted(set(args.offset or []) | set(fixes)) or None
        letters = _select(read_letters(kafka.bootstrap_servers, topic), offsets)
    except (LookupError, TimeoutError, ValueError, OSError) as exc:
        print(f"Fehler / error: {exc}", file=sys.stderr)
        return 1
    plan: list[dict[str, Any]] = []
    for x in letters:
        fixed = x["dlq_offset"] in fixes
        payload = (fixes[x["dlq_offset"]] if fixed else x["payload"] or "").encode("utf-8")
        entry = {
            "dlq_offset": x["dlq_offset"],
            "source_topic": x["source_topic"],
            "key": x["key"],
            "fixed": fixed,
            "action": "replay",
        }
        if not x["source_topic"]:
            entry.update(action="skip", why="dead letter names no source topic")
        elif (problem := check_payload(x["source_topic"], payload)) and not args.force:
            entry.update(action="skip", why=f"would be refused again: {problem}")
        plan.append({**entry, "_payload": payload})
    producer = (
        None
        if args.dry_run
        else KafkaProducer(bootstrap_servers=kafka.bootstrap_servers.split(","), acks="all")
    )
    try:
        for entry in plan:
            if entry["action"] != "replay" or producer is None:
                continue
            key = entry["key"].encode("utf-8") if entry["key"] is not None else None
            meta = producer.send(entry["source_topic"], value=entry["_payload"], key=key).get(30)
            entry.update(action="replayed", partition=meta.partition, offset=meta.offset)
    finally:
        if producer is not None:
            producer.flush()
            producer.close()
    report = [{k: v for k, v in e.items() if k != "_payload"} for e in plan]
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for e in report:
            where = f" -> [{e['partition']}]@{e['offset']}" if "offset" in e else ""
            why = f" ({e['why']})" if "why" in e else ""
            fixed = " (bearbeitet / fixed)" if e["fixed"] else ""
            print(f"#{e['dlq_offset']} {e['action']} {e['source_topic']}{where}{fixed}{why}")
    done = sum(e["action"] == "replayed" for e in report)
    would = sum(e["action"] == "replay" for e in report)
    skipped = sum(e["action"] == "skip" for e in report)
    print(
        f"{done} erneut gesendet / replayed"
        + (f", {would} würden gesendet / would be replayed (dry run)" if args.dry_run else "")
        + f", {skipped} übersprungen / skipped",
        file=sys.stderr,
    )
    return 0 if skipped == 0 else 3


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser(
        "dlq",
        help="inspect dead letters and replay them to their source topic",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = dlq.add_subparsers(dest="dlq_command", required=True)
    topic_help = "source topic (mentions.raw.v1) or its dead-letter topic (mentions.raw.v1.dlq)"
    offset_help = "only the dead letter at this offset of the .dlq topic (repeatable)"

    ins = sub.add_parser("inspect", help="list dead letters: reason, origin, key, payload")
    ins.add_argument("topic", help=topic_help)
    ins.add_argument("--offset", type=int, action="append", help=offset_help)
    ins.add_argument("--json", action="store_true", help="full letters as JSON (a fix file)")
    ins.set_defaults(func=_inspect)

    rep = sub.add_parser(
        "replay",
        help="send dead letters' payloads again to their source topic with their key",
        description="Exit status 3 when some letters were skipped (still invalid).",
    )
    rep.add_argument("topic", help=topic_help)
    rep.add_argument("--offset", type=int, action="append", help=offset_help)
    rep.add_argument(
        "--fix-file",
        type=Path,
        help="edited payloads by dlq_offset (the output of inspect --json); replays those",
    )
    rep.add_argument(
        "--force", action="store_true", help="send payloads the consumer would refuse again"
    )
    rep.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")
    rep.add_argument("--json", action="store_true", help="report as JSON")
    rep.set_defaults(func=_replay)
