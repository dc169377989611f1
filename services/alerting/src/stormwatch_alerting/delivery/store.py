"""Delivery state in one SQLite file: a restart neither re-pages nor forgets an escalation.

Writes are tiny and local, so plain ``sqlite3`` on the event loop is cheaper than a thread
hop; WAL keeps the crisis-room reads from blocking the pipeline's writes.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stormwatch_shared.events import alert_event_ids

from stormwatch_alerting.domain.escalation import AlertGroup, ChainStep
from stormwatch_alerting.domain.notify import Intent, Silence

SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    alert_id TEXT PRIMARY KEY, status TEXT NOT NULL, drill INTEGER NOT NULL,
    ack_code TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_events (
    alert_id TEXT PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, state TEXT NOT NULL,
    intent TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state);
CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, alert_id TEXT, actor TEXT,
    action TEXT NOT NULL, channel TEXT, recipient TEXT, outcome TEXT, provider TEXT,
    provider_id TEXT, detail TEXT, drill INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS audit_alert ON audit(alert_id);
CREATE INDEX IF NOT EXISTS audit_provider_id ON audit(provider_id);
CREATE TABLE IF NOT EXISTS used_nonces (nonce TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sms_log (at TEXT NOT NULL, person TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS erasures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
    subject_digest TEXT NOT NULL, counts TEXT NOT NULL);
"""


def _iso(value: datetime | None) -> str | None:
    # One fixed UTC format, so SQL string comparison is time comparison.
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def group_to_json(group: AlertGroup) -> str:
    data = asdict(group)
    for key in ("opened_at", "updated_at", "next_at", "acked_at", "resolved_at", "silenced_until"):
        data[key] = _iso(getattr(group, key))
    return json.dumps(data)


def group_from_json(text: str) -> AlertGroup:
    data = json.loads(text)
    for key in ("opened_at", "updated_at", "next_at", "acked_at", "resolved_at", "silenced_until"):
        data[key] = _dt(data[key])
    data["chain"] = tuple(
        ChainStep(tuple(s["persons"]), tuple(s["channels"]), tuple(s["broadcast"]), s["wait_s"])
        for s in data["chain"]
    )
    return AlertGroup(**data)


def intent_to_json(intent: Intent) -> str:
    return json.dumps({k: getattr(intent, k) for k in Intent.__slots__})


def intent_from_json(text: str) -> Intent:
    return Intent(**json.loads(text))


class Store:
    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # groups ---------------------------------------------------------------
    def save_group(self, group: AlertGroup) -> None:
        self.db.execute(
            "INSERT INTO groups(alert_id, status, drill, ack_code, data) VALUES (?,?,?,?,?) "
            "ON CONFLICT(alert_id) DO UPDATE SET status=excluded.status, data=excluded.data",
            (group.alert_id, group.status, int(group.drill), group.ack_code, group_to_json(group)),
        )

    def group(self, alert_id: str) -> AlertGroup | None:
        row = self.db.execute("SELECT data FROM groups WHERE alert_id=?", (alert_id,)).fetchone()
        return group_from_json(row["data"]) if row else None

    def group_by_code(self, code: str) -> AlertGroup | None:
        row = self.db.execute(
            "SELECT data FROM groups WHERE ack_code=? AND status!='resolved'", (code,)
        ).fetchone()
        return group_from_json(row["data"]) if row else None

    def open_groups(self) -> list[AlertGroup]:
        rows = self.db.execute("SELECT data FROM groups WHERE status!='resolved'").fetchall()
        return sorted(
            (group_from_json(r["data"]) for r in rows), key=lambda g: g.opened_at, reverse=True
        )

    def all_groups(self, drill: bool | None = None) -> list[AlertGroup]:
        rows = self.db.execute("SELECT data FROM groups").fetchall()
        groups = [group_from_json(r["data"]) for r in rows]
        return sorted(
            (g for g in groups if drill is None or g.drill == drill), key=lambda g: g.opened_at
        )

    # alert events (for the crisis room) -----------------------------------
    def save_event(self, alert_id: str, payload: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO alert_events(alert_id, payload) VALUES (?,?) "
            "ON CONFLICT(alert_id) DO UPDATE SET payload=excluded.payload",
            (alert_id, json.dumps(payload, default=str)),
        )

    def event(self, alert_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT payload FROM alert_events WHERE alert_id=?", (alert_id,)
        ).fetchone()
        return json.loads(row["payload"]) if row else None

    def first_time_event(self, event_id: str, now: datetime) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO seen_events(event_id, at) VALUES (?,?)", (event_id, _iso(now))
        )
        return cur.rowcount == 1

    # dedup + outbox ---------------------------------------------------------
    def claim(self, key: str, now: datetime) -> bool:
        """Reserve an idempotency key; False when it was claimed before (a duplicate)."""
        cur = self.db.execute("INSERT OR IGNORE INTO sent(key, at) VALUES (?,?)", (key, _iso(now)))
        return cur.rowcount == 1

    def enqueue(self, intent: Intent, state: str, now: datetime) -> int:
        cur = self.db.execute(
            "INSERT INTO outbox(key, state, intent, created_at) VALUES (?,?,?,?)",
            (intent.key, state, intent_to_json(intent), _iso(now)),
        )
        return int(cur.lastrowid or 0)

    def set_state(self, ids: list[int], state: str) -> None:
        self.db.executemany("UPDATE outbox SET state=? WHERE id=?", [(state, i) for i in ids])

    def outbox(self, state: str) -> list[tuple[int, Intent, datetime]]:
        rows = self.db.execute(
            "SELECT id, intent, created_at FROM outbox WHERE state=? ORDER BY id", (state,)
        ).fetchall()
        return [
            (r["id"], intent_from_json(r["intent"]), datetime.fromisoformat(r["created_at"]))
            for r in rows
        ]

    # silences ----------------------------------------------------------------
    def save_silence(self, s: Silence) -> None:
        data = {k: getattr(s, k) for k in Silence.__slots__}
        data["starts_at"], data["ends_at"] = _iso(s.starts_at), _iso(s.ends_at)
        self.db.execute(
            "INSERT OR REPLACE INTO silences(id, data) VALUES (?,?)", (s.id, json.dumps(data))
        )

    def silences(self, now: datetime) -> list[Silence]:
        out = []
        for row in self.db.execute("SELECT data FROM silences").fetchall():
            data = json.loads(row["data"])
            data["starts_at"] = datetime.fromisoformat(data["starts_at"])
            data["ends_at"] = datetime.fromisoformat(data["ends_at"])
            silence = Silence(**data)
            if silence.ends_at > now:
                out.append(silence)
        return out

    def expire_silence(self, silence_id: str, now: datetime) -> bool:
        for s in self.silences(now):
            if s.id == silence_id:
                from dataclasses import replace

                self.save_silence(replace(s, ends_at=now))
                return True
        return False

    # audit --------------------------------------------------------------------
    def audit(
        self,
        at: datetime,
        action: str,
        *,
        alert_id: str | None = None,
        actor: str = "system",
        channel: str | None = None,
        recipient: str | None = None,
        outcome: str | None = None,
        provider: str | None = None,
        provider_id: str | None = None,
        detail: str | None = None,
        drill: bool = False,
    ) -> None:
        self.db.execute(
            "INSERT INTO audit(at, alert_id, actor, action, channel, recipient, outcome, "
            "provider, provider_id, detail, drill) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                _iso(at),
                alert_id,
                actor,
                action,
                channel,
                recipient,
                outcome,
                provider,
                provider_id,
                (detail or "")[:500] or None,
                int(drill),
            ),
        )

    def audit_rows(self, alert_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        if alert_id is None:
            rows = self.db.execute("SELECT * FROM audit ORDER BY id LIMIT ?", (limit,))
        else:
            rows = self.db.execute(
                "SELECT * FROM audit WHERE alert_id=? ORDER BY id LIMIT ?", (alert_id, limit)
            )
        return [dict(r) for r in rows.fetchall()]

    def alert_for_provider_id(self, provider_id: str) -> tuple[str | None, bool] | None:
        row = self.db.execute(
            "SELECT alert_id, drill FROM audit WHERE provider_id=? LIMIT 1", (provider_id,)
        ).fetchone()
        return (row["alert_id"], bool(row["drill"])) if row else None

    # ack nonces, sms log, kv ---------------------------------------------------
    def use_nonce(self, nonce: str, now: datetime) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO used_nonces(nonce, at) VALUES (?,?)", (nonce, _iso(now))
        )
        return cur.rowcount == 1

    def log_sms(self, person: str, now: datetime) -> None:
        self.db.execute("INSERT INTO sms_log(at, person) VALUES (?,?)", (_iso(now), person))

    def sms_times(self, since: datetime, person: str | None = None) -> list[datetime]:
        if person is None:
            rows = self.db.execute("SELECT at FROM sms_log WHERE at>=?", (_iso(since),))
        else:
            rows = self.db.execute(
                "SELECT at FROM sms_log WHERE at>=? AND person=?", (_iso(since), person)
            )
        return [datetime.fromisoformat(r["at"]) for r in rows.fetchall()]

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return row["value"] if row else None

    def put(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?,?)", (key, value))

    # privacy: erasure (Art. 17) and retention (Art. 5(1)(e)) ------------------------
    def strip_posts(self, erase: Callable[[Mapping[str, Any]], bool]) -> int:
        """Drop the quoted top posts ``erase`` selects from every stored alert event."""
        removed = 0
        rows = self.db.execute("SELECT alert_id, payload FROM alert_events").fetchall()
        for row in rows:
            payload = json.loads(row["payload"])
            posts = (payload.get("evidence") or {}).get("top_posts") or []
            kept = [p for p in posts if not erase(p)]
            if len(kept) != len(posts):
                removed += len(posts) - len(kept)
                payload["evidence"]["top_posts"] = kept
                self.save_event(row["alert_id"], payload)
        return removed

    def redact_audit(self, needles: Iterable[str]) -> int:
        """Blank audit details that contain any of ``needles`` (case-insensitive)."""
        wanted = [n.casefold() for n in needles if n]
        if not wanted:
            return 0
        hits = [
            r["id"]
            for r in self.db.execute("SELECT id, detail FROM audit WHERE detail IS NOT NULL")
            if any(n in r["detail"].casefold() for n in wanted)
        ]
        self.db.executemany(
            "UPDATE audit SET detail='[gelöscht / erased]' WHERE id=?", [(i,) for i in hits]
        )
        return len(hits)

    def erase_target(self, target_id: str) -> dict[str, int]:
        """Everything kept about one target's alerts: for an ambassador who withdrew consent."""
        groups = (group_from_json(r["data"]) for r in self.db.execute("SELECT data FROM groups"))
        ids = {g.alert_id for g in groups if g.target_id == target_id}
        for row in self.db.execute("SELECT alert_id, payload FROM alert_events").fetchall():
            if json.loads(row["payload"]).get("target_id") == target_id:
                ids.add(row["alert_id"])
        counts = {"alerts": len(ids), "audit": 0, "outbox": 0}
        for aid in ids:
            self.db.execute("DELETE FROM groups WHERE alert_id=?", (aid,))
            self.db.execute("DELETE FROM alert_events WHERE alert_id=?", (aid,))
            counts["audit"] += self.db.execute(
                "DELETE FROM audit WHERE alert_id=?", (aid,)
            ).rowcount
            # idempotency keys start with "<alert_id>|"
            prefix = (len(aid) + 1, aid + "|")
            counts["outbox"] += self.db.execute(
                "DELETE FROM outbox WHERE substr(key, 1, ?) = ?", prefix
            ).rowcount
            self.db.execute("DELETE FROM sent WHERE substr(key, 1, ?) = ?", prefix)
            # every event id the alert can have (a long alert id's end in a digest, so a
            # prefix would miss them)
            self.db.executemany(
                "DELETE FROM seen_events WHERE event_id = ?", [(e,) for e in alert_event_ids(aid)]
            )
            self._forget_kv(aid)
        for row in self.db.execute("SELECT id, data FROM silences").fetchall():
            if json.loads(row["data"]).get("target_id") == target_id:
                self.db.execute("DELETE FROM silences WHERE id=?", (row["id"],))
        return counts

    def _forget_kv(self, alert_id: str) -> None:
        """Per-alert bookkeeping keys look like ``<what>:<alert_id>``."""
        suffix = ":" + alert_id
        self.db.execute("DELETE FROM kv WHERE substr(key, ?) = ?", (-len(suffix), suffix))

    def purge(
        self,
        now: datetime,
        *,
        alerts_days: int = 365,
        audit_days: int = 365,
        texts_days: int = 30,
    ) -> dict[str, int]:
        """Delete what outlived its retention; returns counts per kind (for the log).

        Closed alerts and their bookkeeping go after ``alerts_days``; audit rows after
        ``audit_days``; quoted post texts, handles and links in alert evidence after
        ``texts_days`` (the alert itself, with its counts, stays). Open alerts are kept.
        """
        alerts_cut = _iso(now - timedelta(days=alerts_days)) or ""
        texts_cut = _iso(now - timedelta(days=texts_days)) or ""
        audit_cut = _iso(now - timedelta(days=audit_days)) or ""
        counts = {"alerts": 0, "texts": 0, "audit": 0}
        open_ids = set()
        for row in self.db.execute("SELECT data FROM groups").fetchall():
            g = group_from_json(row["data"])
            if g.open:
                open_ids.add(g.alert_id)
            elif (_iso(g.resolved_at or g.updated_at) or "") < alerts_cut:
                self.db.execute("DELETE FROM groups WHERE alert_id=?", (g.alert_id,))
                counts["alerts"] += 1
                self._forget_kv(g.alert_id)
        for row in self.db.execute("SELECT alert_id, payload FROM alert_events").fetchall():
            if row["alert_id"] in open_ids:
                continue
            payload = json.loads(row["payload"])
            last = _iso(_dt(payload.get("resolved_at") or payload.get("occurred_at"))) or ""
            if last < alerts_cut:
                self.db.execute("DELETE FROM alert_events WHERE alert_id=?", (row["alert_id"],))
                continue
            posts = (payload.get("evidence") or {}).get("top_posts") or []
            if posts and last < texts_cut:
                payload["evidence"]["top_posts"] = []
                payload["privacy"] = {"top_posts_removed": len(posts), "reason": "retention"}
                self.save_event(row["alert_id"], payload)
                counts["texts"] += len(posts)
        counts["audit"] = self.db.execute("DELETE FROM audit WHERE at < ?", (audit_cut,)).rowcount
        for table, col in (
            ("seen_events", "at"),
            ("sent", "at"),
            ("used_nonces", "at"),
            ("sms_log", "at"),
        ):
            self.db.execute(f"DELETE FROM {table} WHERE {col} < ?", (alerts_cut,))  # noqa: S608
        self.db.execute(
            "DELETE FROM outbox WHERE state != 'pending' AND created_at < ?", (alerts_cut,)
        )
        self.put("privacy.last_purge", _iso(now) or "")
        return counts

    def purge_due(self, now: datetime, every: timedelta = timedelta(days=1)) -> bool:
        last = _dt(self.get("privacy.last_purge"))
        return last is None or now - last >= every

    def erasure_salt(self) -> bytes:
        """Per-installation random salt, so erasure digests cannot be matched across sites."""
        value = self.get("privacy.erasure_salt")
        if value is None:
            value = secrets.token_hex(32)
            self.put("privacy.erasure_salt", value)
        return bytes.fromhex(value)

    def log_erasure(self, at: datetime, kind: str, digest: str, counts: Mapping[str, int]) -> None:
        self.db.execute(
            "INSERT INTO erasures(at, kind, subject_digest, counts) VALUES (?,?,?,?)",
            (_iso(at), kind, digest, json.dumps(dict(counts), sort_keys=True)),
        )

    def erasures(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM erasures ORDER BY id").fetchall()
        return [{**dict(r), "counts": json.loads(r["counts"])} for r in rows]
