"""Alert texts, German first and English second, one renderer per channel.

Post texts may reveal patients' health (GDPR Art. 9): they appear in emails for the crisis
team only, never in short channels such as SMS.
"""

from __future__ import annotations

from dataclasses import dataclass

from stormwatch_shared.events import (
    CrisisAlertEscalated,
    CrisisAlertRaised,
    CrisisAlertResolved,
)

AlertEvent = CrisisAlertRaised | CrisisAlertEscalated | CrisisAlertResolved

LEVEL_DE = {"watch": "Beobachten", "warning": "Warnung", "critical": "Kritisch"}
LEVEL_EN = {"watch": "watch", "warning": "warning", "critical": "critical"}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def _who(alert: AlertEvent) -> str:
    return alert.target_name or alert.target_id


def _headline(alert: AlertEvent) -> tuple[str, str]:
    who = _who(alert)
    de_level, en_level = LEVEL_DE[alert.level], LEVEL_EN[alert.level]
    if isinstance(alert, CrisisAlertRaised):
        return (f"Krisenwarnung {de_level}: {who}", f"Crisis alert {en_level}: {who}")
    if isinstance(alert, CrisisAlertEscalated):
        return (
            f"Eskalation auf {de_level}: {who}",
            f"Escalated to {en_level}: {who}",
        )
    return (f"Entwarnung: {who}", f"Resolved: {who}")


def render_email(alert: AlertEvent, crisis_room_url: str = "") -> Rendered:
    de, en = _headline(alert)
    drill = "[ÜBUNG / DRILL] " if alert.drill else ""
    ev = alert.evidence
    at = alert.occurred_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"{drill}{de}",
        f"{drill}{en}",
        "",
        f"Zeitpunkt / time: {at}",
        f"Stufe / level: {LEVEL_DE[alert.level]} / {LEVEL_EN[alert.level]}",
        "",
        "Warum / why:",
        f"- Erwähnungen beobachtet vs. erwartet / observed vs expected: "
        f"{ev.observed:.0f} vs {ev.expected:.1f}"
        + (f" (p = {ev.p_value:.2g})" if ev.p_value is not None else ""),
        f"- Negativanteil jetzt vs. üblich / negative share now vs usual: "
        f"{ev.negative_share:.0%} vs {ev.negative_share_usual:.0%}",
        f"- Verschiedene Autor:innen / distinct authors: {ev.distinct_authors}, "
        f"davon neu / new: {ev.new_authors} ({ev.new_author_share:.0%})",
        f"- Reichweite / reach: {ev.reach:,} Follower".replace(",", "."),
    ]
    if ev.topics:
        lines.append(f"- Themen / topics: {', '.join(ev.topics)}")
    fired = [name for name, ok in ev.gates.items() if ok]
    if fired:
        lines.append(f"- Erfüllte Kriterien / gates passed: {', '.join(fired)}")
    if ev.top_posts:
        lines += ["", "Wichtigste Beiträge / top posts:"]
        for post in ev.top_posts[:5]:
            text = str(post.get("text", ""))[:280].replace("\n", " ")
            url = post.get("url") or ""
            lines.append(f"- {text} {url}".rstrip())
    if isinstance(alert, CrisisAlertResolved):
        lines += [
            "",
            "Die Lage hat sich beruhigt. / The situation has calmed down.",
        ]
    else:
        lines += [
            "",
            "Bitte im Krisenraum prüfen und bestätigen. / Please check and acknowledge in the "
            "crisis room:",
            f"{crisis_room_url}/alerts/{alert.alert_id}" if crisis_room_url else "",
        ]
    lines += ["", f"Alarm-ID / alert id: {alert.alert_id}", "-- stormwatch"]
    return Rendered(subject=f"{drill}[stormwatch] {de} / {en}", body="\n".join(lines) + "\n")


def render_log_line(alert: AlertEvent) -> str:
    de, en = _headline(alert)
    ev = alert.evidence
    drill = "[ÜBUNG / DRILL] " if alert.drill else ""
    return (
        f"{drill}{de} / {en} at {alert.occurred_at.isoformat()} "
        f"(observed {ev.observed:.0f} vs expected {ev.expected:.1f}, "
        f"negative {ev.negative_share:.0%}, authors {ev.distinct_authors}) [{alert.alert_id}]"
    )
