"""Texts for routed delivery: one builder per channel and purpose.

Rules that hold for every text here: German first (English second, or the recipient's
language for personal messages); "ÜBUNG / DRILL" on every drill text; post texts only in
email (HTML-escaped by Jinja's autoescape) and never in SMS, push or chat, which end up on
lock screens and in third-party clouds (GDPR Art. 9: posts may reveal patients' health).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, select_autoescape
from stormwatch_shared.events import CrisisAlertEscalated, CrisisAlertRaised, CrisisAlertResolved

from stormwatch_alerting.delivery.render import LEVEL_DE, LEVEL_EN, AlertEvent, render_email
from stormwatch_alerting.domain.escalation import AlertGroup

DRILL = "ÜBUNG / DRILL"
SMS_MAX = 306
"""Two concatenated GSM-7 segments; longer texts cost more and arrive out of order."""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

_EMAIL_HTML = _env.from_string(
    """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family:sans-serif;max-width:40em">
{% if drill %}
<p style="background:#ffd54f;padding:.5em;font-weight:bold">{{ drill_text }}</p>
{% endif %}
<h1 style="font-size:1.3em">{{ headline }}</h1>
{% if intro %}<p>{{ intro }}</p>{% endif %}
<table>
{% for k, v in facts %}
<tr><th style="text-align:left">{{ k }}</th><td>{{ v }}</td></tr>
{% endfor %}
</table>
{% if posts %}<h2 style="font-size:1.1em">{{ posts_title }}</h2><ul>
{% for p in posts %}
<li>{{ p.text }}{% if p.url %} <a href="{{ p.url }}">{{ p.url }}</a>{% endif %}</li>
{% endfor %}
</ul>{% endif %}
{% for para in paragraphs %}<p>{{ para }}</p>{% endfor %}
{% if ack_url %}
<p><a href="{{ ack_url }}" style="background:#1565c0;color:#fff;padding:.5em 1em">
{{ ack_label }}</a></p>
{% endif %}
{% if room_url %}<p><a href="{{ room_url }}">{{ room_label }}</a></p>{% endif %}
<p style="color:#666">Alarm-ID / alert id: {{ alert_id }}</p>
</body></html>
"""
)


@dataclass(frozen=True)
class Text:
    subject: str
    text: str
    html: str | None = None


def event_from_payload(payload: dict[str, Any]) -> AlertEvent:
    models: dict[str, Any] = {
        "CrisisAlertRaised": CrisisAlertRaised,
        "CrisisAlertEscalated": CrisisAlertEscalated,
        "CrisisAlertResolved": CrisisAlertResolved,
    }
    data = {k: v for k, v in payload.items() if k != "resolved_at"}  # our own bookkeeping
    event: AlertEvent = models[payload["type"]].model_validate(data)
    return event


def _drill(drill: bool) -> str:
    return f"[{DRILL}] " if drill else ""


def _who(group: AlertGroup) -> str:
    return group.target_name or group.target_id


def _posts(event: AlertEvent, n: int = 5) -> list[dict[str, str]]:
    out = []
    for post in event.evidence.top_posts[:n]:
        url = str(post.get("url") or "")
        out.append(
            {
                "text": str(post.get("text", ""))[:280].replace("\n", " "),
                "url": url if url.startswith(("https://", "http://")) else "",
            }
        )
    return out


def _facts(event: AlertEvent) -> list[tuple[str, str]]:
    ev = event.evidence
    facts = [
        ("Stufe / level", f"{LEVEL_DE[event.level]} / {LEVEL_EN[event.level]}"),
        ("Zeitpunkt / time", event.occurred_at.strftime("%Y-%m-%d %H:%M UTC")),
        (
            "Beobachtet vs. erwartet / observed vs expected",
            f"{ev.observed:.0f} vs {ev.expected:.1f}",
        ),
        (
            "Negativanteil / negative share",
            f"{ev.negative_share:.0%} (üblich / usual {ev.negative_share_usual:.0%})",
        ),
        ("Autor:innen / authors", f"{ev.distinct_authors} (neu / new {ev.new_authors})"),
        ("Reichweite / reach", f"{ev.reach:,}".replace(",", ".")),
    ]
    if ev.topics:
        facts.append(("Themen / topics", ", ".join(ev.topics)))
    return facts


def team_email(
    group: AlertGroup,
    event: AlertEvent,
    *,
    kind: str,
    step: int,
    room_url: str,
    ack_url: str | None,
) -> Text:
    """The crisis team's email: the full explanation and top posts, German and English."""
    base = render_email(event, room_url.rsplit("/alerts/", 1)[0] if room_url else "")
    drill = _drill(group.drill)
    subject = base.subject if base.subject.startswith(drill) else drill + base.subject
    intro = ""
    if kind == "step":
        intro = (
            f"Eskalationsstufe {step + 1}: noch nicht bestätigt. / "
            f"Escalation step {step + 1}: not acknowledged yet."
        )
        subject = f"{drill}[stormwatch] Eskalation / escalation {step + 1}: {_who(group)}"
    elif kind == "resolved":
        subject = f"{drill}[stormwatch] Entwarnung / resolved: {_who(group)}"
    text = base.body
    if intro:
        text = intro + "\n\n" + text
    if drill and not text.startswith(drill):
        text = f"{drill}\n" + text
    if ack_url and kind != "resolved":
        text += f"\nBestätigen / acknowledge: {ack_url}\n"
    headline = subject.replace(drill, "").replace("[stormwatch] ", "")
    html = _EMAIL_HTML.render(
        lang="de",
        subject=subject,
        drill=group.drill,
        drill_text=DRILL,
        headline=headline,
        intro=intro,
        facts=_facts(event),
        posts=_posts(event),
        posts_title="Wichtigste Beiträge / top posts",
        paragraphs=(
            ["Die Lage hat sich beruhigt. / The situation has calmed down."]
            if kind == "resolved"
            else ["Bitte prüfen und bestätigen. / Please check and acknowledge."]
        ),
        ack_url=ack_url if kind != "resolved" else None,
        ack_label="Bestätigen / Acknowledge",
        room_url=room_url,
        room_label="Krisenraum öffnen / open the crisis room",
        alert_id=group.alert_id,
    )
    return Text(subject, text, html)


def short_line(group: AlertGroup, event: AlertEvent) -> str:
    ev = event.evidence
    return (
        f"{LEVEL_DE[group.level]}: {_who(group)}, {ev.observed:.0f} Erwähnungen "
        f"(erwartet {ev.expected:.0f}), {ev.negative_share:.0%} negativ"
    )


def sms(group: AlertGroup, event: AlertEvent, *, kind: str, link: str | None) -> str:
    """No post text, no author: counts, level, how to acknowledge."""
    drill = _drill(group.drill)
    if kind == "resolved":
        return f"{drill}stormwatch Entwarnung: {_who(group)}"[:SMS_MAX]
    head = f"{drill}stormwatch {short_line(group, event)}."
    ack = f" Bestätigen: Antwort OK {group.ack_code}"
    tail = f" {link}" if link else ""
    text = head + ack + tail
    if len(text) > SMS_MAX:
        text = head[: SMS_MAX - len(ack)] + ack
    return text[:SMS_MAX]


def sms_bundle(items: list[tuple[AlertGroup, AlertEvent]], link: str | None) -> str:
    """Many alerts, one SMS."""
    drill = _drill(any(g.drill for g, _ in items))
    lines = [f"{drill}stormwatch: {len(items)} Alarme"]
    for group, _ in items[:4]:
        lines.append(f"{LEVEL_DE[group.level]} {_who(group)} (OK {group.ack_code})")
    if len(items) > 4:
        lines.append(f"+{len(items) - 4} weitere")
    lines.append("Antwort OK = alle bestätigen.")
    text = " | ".join(lines)
    if link and len(text) + len(link) + 1 <= SMS_MAX:
        text += " " + link
    return text[:SMS_MAX]


def push(group: AlertGroup, event: AlertEvent, *, kind: str) -> tuple[str, str]:
    drill = _drill(group.drill)
    if kind == "resolved":
        return f"{drill}Entwarnung / resolved: {_who(group)}", "Die Lage hat sich beruhigt."
    title = f"{drill}{LEVEL_DE[group.level]}: {_who(group)}"
    return title, short_line(group, event) + ". Bitte im Krisenraum prüfen."


def chat(group: AlertGroup, event: AlertEvent, *, kind: str, room_url: str) -> str:
    drill = _drill(group.drill)
    if kind == "resolved":
        return f"{drill}:white_check_mark: Entwarnung / resolved: {_who(group)}"
    ev = event.evidence
    topics = f" Themen: {', '.join(ev.topics)}." if ev.topics else ""
    reach = f"{ev.reach:,}".replace(",", ".")
    return (
        f"{drill}:rotating_light: {short_line(group, event)}; "
        f"{ev.distinct_authors} Autor:innen, Reichweite {reach}."
        + topics
        + f" Krisenraum / crisis room: {room_url}"
    )


def digest(items: list[tuple[AlertGroup, AlertEvent]], room_url: str) -> Text:
    drill = _drill(any(g.drill for g, _ in items))
    subject = f"{drill}[stormwatch] Übersicht / digest: {len(items)} Beobachtungen / watch alerts"
    lines = [subject, ""]
    for group, event in items:
        lines.append(f"- {short_line(group, event)} ({event.occurred_at:%Y-%m-%d %H:%M} UTC)")
    lines += ["", f"Krisenraum / crisis room: {room_url}", "-- stormwatch"]
    html = _EMAIL_HTML.render(
        lang="de",
        subject=subject,
        drill=bool(drill),
        drill_text=DRILL,
        headline=subject.replace(drill, ""),
        intro="",
        facts=[(g.target_name or g.target_id, short_line(g, e)) for g, e in items],
        posts=[],
        paragraphs=[],
        ack_url=None,
        room_url=room_url,
        room_label="Krisenraum öffnen / open the crisis room",
        alert_id=", ".join(g.alert_id for g, _ in items),
    )
    return Text(subject, "\n".join(lines) + "\n", html)


_HEADS_UP = {
    "de": {
        "subject": "Hinweis: Aufmerksamkeit für Ihre Beiträge",
        "hello": "Hallo {name},",
        "what": (
            "in den sozialen Medien gibt es gerade deutlich mehr Reaktionen auf Sie als "
            "üblich ({observed:.0f} statt etwa {expected:.0f}), viele davon kritisch. Das ist "
            "kein Vorwurf an Sie, wir möchten Sie nur früh informieren."
        ),
        "posts": "Die meistbeachteten Reaktionen:",
        "advice": (
            "Bitte antworten Sie vorerst nicht und löschen Sie nichts, bevor Sie mit uns "
            "gesprochen haben. Gemeinsam finden wir den richtigen Ton."
        ),
        "contact": "Ansprechperson in der Unternehmenskommunikation: {contact}{phone}",
        "guideline": "Unsere Social-Media-Leitlinie: {url}",
        "sms": (
            "Hallo {name}, zu Ihnen gibt es gerade viele Reaktionen online. Bitte vorerst "
            "nicht antworten, erst mit {contact}{phone} sprechen. Leitlinie: {url}"
        ),
        "push_title": "Hinweis zu Ihren Beiträgen",
    },
    "en": {
        "subject": "Heads-up: attention on your posts",
        "hello": "Hello {name},",
        "what": (
            "there are many more reactions to you on social media than usual right now "
            "({observed:.0f} instead of about {expected:.0f}), many of them critical. This is "
            "not a reproach; we want you to know early."
        ),
        "posts": "The most noticed reactions:",
        "advice": (
            "Please do not reply or delete anything before you have talked to us. We will "
            "find the right tone together."
        ),
        "contact": "Your contact in communications: {contact}{phone}",
        "guideline": "Our social-media guideline: {url}",
        "sms": (
            "Hello {name}, there are many reactions to you online right now. Please do not "
            "reply yet; talk to {contact}{phone} first. Guideline: {url}"
        ),
        "push_title": "Heads-up about your posts",
    },
}


def heads_up(
    lang: str,
    name: str,
    event: AlertEvent,
    *,
    drill: bool,
    contact: str,
    contact_phone: str | None,
    guideline_url: str,
) -> tuple[Text, str, str]:
    """(email, sms text, push title): calm, personal, in the ambassador's language."""
    t = _HEADS_UP.get(lang, _HEADS_UP["de"])
    d = _drill(drill)
    phone = f" ({contact_phone})" if contact_phone else ""
    ev = event.evidence
    what = t["what"].format(observed=ev.observed, expected=ev.expected)
    lines = [d + t["hello"].format(name=name), "", what, ""]
    posts = _posts(event, 3)
    if posts:
        lines.append(t["posts"])
        lines += [f"- {p['text']} {p['url']}".rstrip() for p in posts]
        lines.append("")
    contact_line = t["contact"].format(contact=contact, phone=phone)
    guideline = t["guideline"].format(url=guideline_url)
    lines += [t["advice"], "", contact_line, guideline, "", "-- stormwatch"]
    html = _EMAIL_HTML.render(
        lang=lang,
        subject=d + t["subject"],
        drill=drill,
        drill_text=DRILL,
        headline=t["hello"].format(name=name),
        intro=what,
        facts=[],
        posts=posts,
        posts_title=t["posts"],
        paragraphs=[t["advice"], contact_line, guideline],
        ack_url=None,
        room_url=None,
        alert_id=event.alert_id,
    )
    sms_text = d + t["sms"].format(name=name, contact=contact, phone=phone, url=guideline_url)
    return (
        Text(d + t["subject"], "\n".join(lines) + "\n", html),
        sms_text[:SMS_MAX],
        d + t["push_title"],
    )
