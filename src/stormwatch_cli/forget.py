"""``stormwatch forget``: erasure on request (GDPR Art. 17) across every store we keep;
``stormwatch retention purge``: the storage limits (Art. 5(1)(e)) on the state database.

What ``forget`` does, in this order (docs/privacy.md, "Löschung / erasure"):

1. Finds the subject's records in the mention topics (raw, scored): their author ids for a
   handle, their mention ids. These topics are append-only logs and cannot be rewritten;
   their records go with retention, and the command prints which partitions and offsets
   hold them (for Kafka's DeleteRecords, if the wait is too long).
2. Rewrites the compacted detector changelog: the newest state of every target that holds
   the subject is published again without them (an ambassador's state gets a tombstone).
   The alerting service must not run meanwhile: it would publish its in-memory state, with
   the subject, over ours. The command refuses while its consumer group has members.
3. Removes the subject's quoted posts from stored alerts and blanks audit details that name
   them, in the alerting state database (an ambassador: all their alerts).
4. Logs the erasure: time, kind, counts and a keyed hash of the subject, never the subject.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_LOG_DB = Path("var/alerting/erasures.sqlite3")


@dataclass
class Request:
    kind: str  # "author" | "mention" | "ambassador"
    value: str


@dataclass
class Outcome:
    counts: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, dict[int, int]] = field(default_factory=dict)
    """topic -> partition -> last offset holding the subject (not erasable in place)."""
    notes: list[str] = field(default_factory=list)


class ForgetError(RuntimeError):
    """Stops the erasure before anything is changed; the text says why and what to do."""


# --------------------------------------------------------------------------- Kafka


def _read_to_end(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` up to the end offsets taken at the start."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None
    )
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not parts:
            return []
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        remaining = {tp for tp in parts if end[tp] > 0}
        out: list[Any] = []
        idle = 0
        while remaining:
            batch = consumer.poll(timeout_ms=500)
            idle = 0 if batch else idle + 1
            if idle > 60:
                raise ForgetError(f"{topic}: nicht bis zum Ende lesbar / could not read to end")
            for tp, records in batch.items():
                out.extend(r for r in records if r.offset < end[tp])
            for tp in list(remaining):
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return out
    finally:
        consumer.close()


def _alerting_running(bootstrap: str, group: str) -> bool:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="stormwatch-forget")
    try:
        for g in admin.list_groups():
            gid = g.get("group_id") if isinstance(g, dict) else g[0]
            state = g.get("group_state") if isinstance(g, dict) else None
            if gid == group and state not in ("Empty", "Dead"):
                return True
        return False
    finally:
        admin.close()


def _scan_mentions(kafka: Any, req: Request, out: Outcome) -> tuple[set[str], set[str], set[str]]:
    """Author ids, handles and mention ids of the subject, from the mention topics."""
    import orjson
    from stormwatch_alerting.privacy import normalise_handle
    from stormwatch_shared.topics import MENTIONS_RAW, MENTIONS_SCORED

    ids: set[str] = set()
    handles: set[str] = set()
    mids: set[str] = set()
    wanted = normalise_handle(req.value)
    for base in (MENTIONS_RAW, MENTIONS_SCORED):
        topic = kafka.topic(base)
        for record in _read_to_end(kafka.bootstrap_servers, topic):
            hit = False
            if req.kind == "ambassador":
                hit = record.key == req.value.encode()
            else:
                try:
                    mention = orjson.loads(record.value)["mention"]
                    author = mention["author"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
                if req.kind == "mention":
                    hit = mention.get("id") == req.value
                else:
                    hit = author.get("id") == req.value or (
                        normalise_handle(str(author.get("handle", ""))) == wanted
                    )
                if hit:
                    ids.add(str(author.get("id")))
                    handles.add(str(author.get("handle")))
                    mids.add(str(mention.get("id")))
            if hit:
                parts = out.remaining.setdefault(base, {})
                parts[record.partition] = max(parts.get(record.partition, -1), record.offset)
                out.counts[f"kafka_{base}"] = out.counts.get(f"kafka_{base}", 0) + 1
    return ids, handles, mids


def _rewrite_changelog(kafka: Any, req: Request, subject: Any, dry_run: bool, out: Outcome) -> None:
    import orjson
    from kafka import KafkaProducer
    from stormwatch_alerting.privacy import erase_from_snapshot, residue
    from stormwatch_shared.topics import DETECTOR_CHANGELOG

    topic = kafka.topic(DETECTOR_CHANGELOG)
    latest: dict[bytes, bytes | None] = {}
    for record in _read_to_end(kafka.bootstrap_servers, topic):
        if record.key is not None:
            latest[record.key] = record.value
    writes: list[tuple[bytes, bytes | None]] = []
    exact = subject.author_ids | subject.mention_ids
    for key, value in latest.items():
        if value is None:
            continue
        if req.kind == "ambassador":
            if key == req.value.encode():
                writes.append((key, None))
            continue
        entry = orjson.loads(value)
        state, removed = erase_from_snapshot(entry["state"], subject)
        left = residue(state, exact, exact=True)
        if left:
            raise ForgetError(
                f"Detektorzustand von {entry.get('target_id')!r} enthält nach dem Löschen noch "
                f"Daten / still holds the subject at {left[:3]}: nothing was changed"
            )
        if removed:
            out.counts["changelog_entries"] = out.counts.get("changelog_entries", 0) + removed
            writes.append((key, orjson.dumps({**entry, "state": state})))
    out.counts["changelog_states" if req.kind != "ambassador" else "changelog_tombstones"] = len(
        writes
    )
    if dry_run or not writes:
        return
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers.split(","), acks="all")
    try:
        for key, value in writes:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


# --------------------------------------------------------------------------- orchestration


def forget(
    req: Request,
    *,
    kafka: Any | None,
    state_db: Path | None,
    now: datetime,
    alerting_group: str = "stormwatch-alerting",
    allow_running: bool = False,
    dry_run: bool = False,
) -> Outcome:
    """Erase one subject everywhere; ``kafka`` None leaves Kafka alone (store only)."""
    from stormwatch_alerting.delivery.store import Store
    from stormwatch_alerting.privacy import Subject, subject_digest

    out = Outcome()
    ids: set[str] = set()
    handles: set[str] = set()
    mids: set[str] = set()
    if req.kind == "author":
        ids.add(req.value)
        handles.add(req.value)
    elif req.kind == "mention":
        mids.add(req.value)
    if kafka is not None:
        if not allow_running and _alerting_running(kafka.bootstrap_servers, alerting_group):
            raise ForgetError(
                f"Alerting läuft (Gruppe {alerting_group}) / alerting is running: stop it first, "
                "it would write its in-memory detector state back over the erasure; start it "
                "again afterwards (it restores the rewritten state)."
            )
        more_ids, more_handles, more_mids = _scan_mentions(kafka, req, out)
        if req.kind == "author":
            ids |= more_ids
            handles |= more_handles
            mids |= more_mids
        # a single mention: only that post goes; its author stays (they asked for one post)
    subject = Subject.of(ids, handles, mids)
    if kafka is not None:
        _rewrite_changelog(kafka, req, subject, dry_run, out)
    store = Store(state_db or DEFAULT_LOG_DB)
    try:
        if req.kind == "ambassador" and not dry_run:
            for key, n in store.erase_target(req.value).items():
                out.counts[f"store_{key}"] = n
        elif not dry_run:
            out.counts["store_posts"] = store.strip_posts(subject.matches_post)
            needles = {*subject.author_ids, *subject.mention_ids}
            needles |= {f"@{h}" for h in subject.handles}
            out.counts["store_audit_details"] = store.redact_audit(needles)
        if not dry_run:
            digest = subject_digest(store.erasure_salt(), req.kind, req.value)
            store.log_erasure(now, req.kind, digest, out.counts)
    finally:
        store.close()
    if out.remaining:
        out.notes.append(
            "Nicht überschreibbar / append-only topics still hold the subject until retention "
            "(STORMWATCH_RETENTION_MENTIONS_DAYS) deletes them, or DeleteRecords up to the "
            "offsets below (deletes every older record of that partition too)."
        )
    if kafka is None:
        out.notes.append(
            "Kafka nicht bearbeitet / Kafka left alone (--no-kafka): detector state untouched."
        )
    return out


def _delete_records_json(kafka: Any, out: Outcome) -> dict[str, Any]:
    """Input for ``kafka-delete-records.sh --offset-json-file``: up to and including the
    subject's last record per partition."""
    return {
        "version": 1,
        "partitions": [
            {"topic": kafka.topic(base), "partition": p, "offset": last + 1}
            for base, parts in sorted(out.remaining.items())
            for p, last in sorted(parts.items())
        ],
    }


def _forget_cli(args: argparse.Namespace) -> int:
    from stormwatch_alerting.delivery.settings import DeliverySettings
    from stormwatch_alerting.settings import AlertingSettings
    from stormwatch_shared.settings import KafkaSettings, load_settings

    kind, value = next(
        (k, v) for k in ("author", "mention", "ambassador") if (v := getattr(args, k))
    )
    value = value.strip()
    if not value:
        print("Fehler / error: leerer Wert / empty value", file=sys.stderr)
        return 2
    state_db = args.state_db or load_settings(DeliverySettings).state_db
    kafka = None if args.no_kafka else load_settings(KafkaSettings)
    group = load_settings(AlertingSettings).group_id
    try:
        out = forget(
            Request(kind, value),
            kafka=kafka,
            state_db=state_db,
            now=datetime.now(UTC),
            alerting_group=group,
            allow_running=args.allow_running,
            dry_run=args.dry_run,
        )
    except ForgetError as exc:
        print(f"Abgebrochen / aborted: {exc}", file=sys.stderr)
        return 3
    summary: dict[str, Any] = {"kind": kind, "dry_run": args.dry_run, "counts": out.counts}
    if kafka is not None and out.remaining:
        summary["delete_records"] = _delete_records_json(kafka, out)
    print(json.dumps(summary, indent=2))
    for note in out.notes:
        print(note, file=sys.stderr)
    if kind == "ambassador":
        print(
            "Bitte auch Einwilligung in Watchlist und Routing widerrufen / also withdraw consent "
            "in the watch list (listener) and the routing file (consent: false).",
            file=sys.stderr,
        )
    return 0


def _purge_cli(args: argparse.Namespace) -> int:
    from stormwatch_alerting.delivery.settings import DeliverySettings
    from stormwatch_alerting.delivery.store import Store
    from stormwatch_shared.settings import RetentionSettings, load_settings

    state_db = args.state_db or load_settings(DeliverySettings).state_db
    if state_db is None or not state_db.exists():
        print("Fehler / error: keine Zustandsdatenbank / no state DB (ALERTING_STATE_DB)")
        return 2
    r = load_settings(RetentionSettings)
    store = Store(state_db)
    try:
        counts = store.purge(
            datetime.now(UTC),
            alerts_days=r.alerts_days,
            audit_days=r.audit_days,
            texts_days=r.texts_days,
        )
    finally:
        store.close()
    print(json.dumps(counts))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "forget",
        help="erase an author, a mention or an ambassador everywhere (GDPR Art. 17)",
        epilog="Stop the alerting service first. See docs/privacy.md.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--author", metavar="HANDLE_OR_ID", help="e.g. @name or the network's id")
    who.add_argument("--mention", metavar="ID", help="a mention id, e.g. x:123")
    who.add_argument(
        "--ambassador", metavar="TARGET_ID", help="all alerts and state of a watched ambassador"
    )
    p.add_argument(
        "--state-db", type=Path, default=None, help="alerting state DB (ALERTING_STATE_DB)"
    )
    p.add_argument("--no-kafka", action="store_true", help="only the state database")
    p.add_argument("--allow-running", action="store_true", help="do not refuse while alerting runs")
    p.add_argument("--dry-run", action="store_true", help="count, change nothing")
    p.set_defaults(func=_forget_cli)

    r = subparsers.add_parser("retention", help="storage limits of the alerting state DB")
    rs = r.add_subparsers(dest="retention_command", required=True)
    purge = rs.add_parser("purge", help="delete what outlived STORMWATCH_RETENTION_* now")
    purge.add_argument("--state-db", type=Path, default=None)
    purge.set_defaults(func=_purge_cli)
