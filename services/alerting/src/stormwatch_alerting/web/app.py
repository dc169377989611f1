"""The crisis room, served by the alerting service (aiohttp, 127.0.0.1 by default).

German first. Login by scrypt-hashed user list or a trusted reverse-proxy header; every
POST carries a CSRF token bound to the session; strict security headers (no inline script
at all, so the CSP can forbid it). Also the endpoints messages point at: one-click ack
links and Twilio's SMS-reply and status webhooks (signature checked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from stormwatch_alerting.delivery.render import LEVEL_DE
from stormwatch_alerting.domain.ack import AckTokenError, twilio_valid
from stormwatch_alerting.domain.escalation import TransitionError
from stormwatch_alerting.web.auth import Signer, parse_users, verify_password

if TYPE_CHECKING:
    from stormwatch_alerting.delivery.service import Delivery
    from stormwatch_alerting.delivery.settings import DeliverySettings

log = logging.getLogger("stormwatch.alerting.web")

SESSION_COOKIE, PRE_COOKIE = "sw_session", "sw_pre"
SESSION_S = 12 * 3600

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

CSS = """body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60em;padding:1em}
.drill{background:#ffd54f;padding:.3em .6em;font-weight:bold}
.critical{color:#b71c1c}.warning{color:#e65100}.watch{color:#1565c0}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em;
text-align:left;vertical-align:top}form.inline{display:inline}button{margin:.2em;padding:.4em 1em}
.muted{color:#666}.err{color:#b71c1c}"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

_BASE = """<!doctype html><html lang="de"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} – stormwatch Krisenraum</title><link rel="stylesheet" href="/style.css">
</head><body><header><strong>stormwatch Krisenraum</strong> <span class="muted">/ crisis room</span>
{% if user %} · {{ user }} <form class="inline" method="post" action="/logout">
<input type="hidden" name="csrf" value="{{ csrf }}"><button>Abmelden / log out</button></form>
{% endif %}</header><main>{{ body }}</main></body></html>"""

_BASE_T = _env.from_string(_BASE)

_LOGIN = _env.from_string(
    """<h1>Anmelden / log in</h1>{% if error %}<p class="err">{{ error }}</p>{% endif %}
<form method="post" action="/login"><input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<p><label>Benutzer / user <input name="user" id="user" autocomplete="username"></label></p>
<p><label>Passwort / password <input name="password" id="password" type="password"
autocomplete="current-password"></label></p><button id="login">Anmelden / log in</button></form>"""
)

_INDEX = _env.from_string(
    """<h1>Offene Alarme / open alerts</h1>
{% if not groups %}<p>Keine offenen Alarme. / No open alerts.</p>{% else %}<table>
<tr><th>Stufe / level</th><th>Ziel / target</th><th>seit / since</th><th>Status</th></tr>
{% for g in groups %}<tr><td class="{{ g.level }}">{{ level_de[g.level] }}
{% if g.drill %}<span class="drill">ÜBUNG / DRILL</span>{% endif %}</td>
<td><a href="/alerts/{{ g.alert_id }}">{{ g.target_name or g.target_id }}</a></td>
<td>{{ g.opened_at.strftime('%Y-%m-%d %H:%M') }} UTC</td><td>{{ g.status }}</td></tr>{% endfor %}
</table>{% endif %}"""
)

_ALERT = _env.from_string(
    """{% if g.drill %}<p class="drill">ÜBUNG / DRILL</p>{% endif %}
<h1 class="{{ g.level }}">{{ level_de[g.level] }}: {{ g.target_name or g.target_id }}</h1>
<p>Status: <strong id="status">{{ g.status }}</strong>{% if g.acked_by %} – bestätigt von /
acknowledged by {{ g.acked_by }}{% endif %} · Code {{ g.ack_code }} · Stufe der Kette / chain step
{{ g.step + 1 }}/{{ g.chain|length }}</p>
{% if g.status != 'resolved' %}
{% if g.status != 'acknowledged' %}<form class="inline" method="post"
action="/alerts/{{ g.alert_id }}/ack"><input type="hidden" name="csrf" value="{{ csrf }}">
<button id="ack">Bestätigen / acknowledge</button></form>{% endif %}
<form class="inline" method="post" action="/alerts/{{ g.alert_id }}/resolve">
<input type="hidden" name="csrf" value="{{ csrf }}"><button id="resolve">Auflösen / resolve</button>
</form><form class="inline" method="post" action="/alerts/{{ g.alert_id }}/silence">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="minutes" value="60">
<button id="silence">60 min stumm / silence 60 min</button></form>{% endif %}
<h2>Warum / why</h2><table>{% for k, v in facts %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>
{% endfor %}</table>
<h2>Wichtigste Beiträge / top posts</h2><ul id="posts">{% for p in posts %}<li>{{ p.text }}
{% if p.url %}<a href="{{ p.url }}" rel="noopener noreferrer">Link</a>{% endif %}</li>
{% else %}<li class="muted">–</li>{% endfor %}</ul>
<h2>Protokoll / audit trail</h2><table id="audit"><tr><th>Zeit / time</th><th>Aktion / action</th>
<th>wer / who</th><th>Kanal / channel</th><th>Ergebnis / outcome</th><th>Details</th></tr>
{% for r in audit %}<tr><td>{{ r.at[:19] }}</td><td>{{ r.action }}</td>
<td>{{ r.recipient or r.actor }}</td><td>{{ r.channel or '' }}</td><td>{{ r.outcome or '' }}</td>
<td>{{ r.provider or '' }} {{ r.detail or '' }}</td></tr>{% endfor %}</table>
<p><a href="/">← alle Alarme / all alerts</a></p>"""
)

_ACK = _env.from_string(
    """<h1>Alarm bestätigen / acknowledge alert</h1>{% if error %}<p class="err">{{ error }}</p>
{% elif done %}<p id="done">Bestätigt. Danke! / Acknowledged. Thank you!</p>{% else %}
<p>Mit Klick bestätigen Sie den Alarm; die Eskalation stoppt. / Clicking acknowledges the
alert and stops the escalation.</p><form method="post"><button id="confirm">Bestätigen /
acknowledge</button></form>{% endif %}"""
)


@dataclass
class WebHandle:
    runner: web.AppRunner
    port: int

    async def cleanup(self) -> None:
        await self.runner.cleanup()


def _page(title: str, body: str, user: str | None = None, csrf: str = "") -> web.Response:
    # ``body`` comes from an autoescaping template already; escaping it again would show tags.
    html = _BASE_T.render(title=title, body=Markup(body), user=user, csrf=csrf)  # noqa: S704
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def build_web(delivery: Delivery, ds: DeliverySettings) -> web.Application:
    signer = Signer(delivery.ack_secret)
    users = parse_users(ds.web_users)
    if not users and not ds.web_trusted_header:
        log.warning("Krisenraum ohne Benutzer / crisis room has no users: nobody can log in")

    def now_s() -> int:
        return int(delivery.clock().timestamp())

    def current_user(request: web.Request) -> tuple[str, str] | None:
        """(user, csrf binding) for a logged-in request."""
        if ds.web_trusted_header and request.remote in ds.web_trusted_proxies:
            name = request.headers.get(ds.web_trusted_header)
            if name:
                return name, "proxy|" + name
        cookie = request.cookies.get(SESSION_COOKIE)
        session = signer.read_session(cookie, now_s()) if cookie else None
        return (session.user, session.nonce) if session else None

    @web.middleware
    async def security(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            resp: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            # Redirects and errors get the same headers; re-raised, as aiohttp expects.
            for k, v in HEADERS.items():
                exc.headers.setdefault(k, v)
            raise
        for k, v in HEADERS.items():
            resp.headers.setdefault(k, v)
        return resp

    async def require(request: web.Request, *, post: bool = False) -> tuple[str, str]:
        who = current_user(request)
        if who is None:
            raise web.HTTPSeeOther(f"/login?next={request.path}")
        if post:
            form = await request.post()
            if not signer.csrf_ok(who[1], str(form.get("csrf", ""))):
                raise web.HTTPForbidden(text="CSRF-Token ungültig / invalid CSRF token")
        return who

    def cookie_kw() -> dict[str, Any]:
        return {"httponly": True, "samesite": "Strict", "secure": ds.web_cookie_secure, "path": "/"}

    async def login_form(request: web.Request) -> web.Response:
        pre = request.cookies.get(PRE_COOKIE) or signer.session_cookie("-", now_s() + 3600)
        body = _LOGIN.render(
            csrf=signer.csrf(pre),
            next=request.query.get("next", "/"),
            error=request.query.get("error"),
        )
        resp = _page("Anmelden", body)
        resp.set_cookie(PRE_COOKIE, pre, max_age=3600, **cookie_kw())
        return resp

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        pre = request.cookies.get(PRE_COOKIE, "")
        if not pre or not signer.csrf_ok(pre, str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text="CSRF-Token ungültig / invalid CSRF token")
        user, password = str(form.get("user", "")), str(form.get("password", ""))
        stored = users.get(user)
        if stored is None or not verify_password(password, stored):
            delivery.store.audit(delivery.clock(), "login_failed", actor=user[:50])
            raise web.HTTPSeeOther("/login?error=Anmeldung+fehlgeschlagen+%2F+login+failed")
        delivery.store.audit(delivery.clock(), "login", actor=user)
        target = str(form.get("next", "/"))
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        resp = web.HTTPSeeOther(target)
        resp.set_cookie(
            SESSION_COOKIE,
            signer.session_cookie(user, now_s() + SESSION_S),
            max_age=SESSION_S,
            **cookie_kw(),
        )
        resp.del_cookie(PRE_COOKIE, path="/")
        raise resp

    async def logout(request: web.Request) -> web.Response:
        await require(request, post=True)
        resp = web.HTTPSeeOther("/login")
        resp.del_cookie(SESSION_COOKIE, path="/")
        raise resp

    async def index(request: web.Request) -> web.Response:
        user, binding = await require(request)
        body = _INDEX.render(groups=delivery.store.open_groups(), level_de=LEVEL_DE)
        return _page("Offene Alarme", body, user, signer.csrf(binding))

    async def alert_page(request: web.Request) -> web.Response:
        user, binding = await require(request)
        alert_id = request.match_info["alert_id"]
        group = delivery.store.group(alert_id)
        payload = delivery.store.event(alert_id)
        if group is None or payload is None:
            raise web.HTTPNotFound(text="Unbekannter Alarm / unknown alert")
        from stormwatch_alerting.delivery.messages import _facts, _posts, event_from_payload

        event = event_from_payload({k: v for k, v in payload.items() if k != "resolved_at"})
        body = _ALERT.render(
            g=group,
            level_de=LEVEL_DE,
            csrf=signer.csrf(binding),
            facts=_facts(event),
            posts=_posts(event, 10),
            audit=delivery.store.audit_rows(alert_id),
        )
        return _page(
            f"{LEVEL_DE[group.level]}: {group.target_name}", body, user, signer.csrf(binding)
        )

    async def action(request: web.Request) -> web.Response:
        user, _ = await require(request, post=True)
        alert_id, what = request.match_info["alert_id"], request.match_info["action"]
        try:
            if what == "ack":
                delivery.acknowledge(alert_id, user, "crisis_room")
            elif what == "resolve":
                delivery.resolve_manually(alert_id, user)
            elif what == "silence":
                form = await request.post()
                minutes = max(1, min(24 * 60, int(str(form.get("minutes", "60")) or 60)))
                delivery.add_silence(user, minutes=minutes, alert_id=alert_id, comment="Krisenraum")
            else:
                raise web.HTTPNotFound()
        except KeyError as exc:
            raise web.HTTPNotFound(text="Unbekannter Alarm / unknown alert") from exc
        except (TransitionError, ValueError) as exc:
            raise web.HTTPConflict(text=str(exc)) from exc
        raise web.HTTPSeeOther(f"/alerts/{alert_id}")

    async def ack_link(request: web.Request) -> web.Response:
        """GET shows a button, POST acknowledges: mail scanners prefetch GET links and
        would otherwise use up the single-use link before a human sees it."""
        token = request.match_info["token"]
        error, done = None, False
        if request.method == "POST":
            try:
                delivery.ack_with_token(token)
                done = True
            except AckTokenError as exc:
                error = f"Link ungültig / link invalid: {exc}"
            except TransitionError as exc:
                error = str(exc)
            except KeyError:
                error = "Unbekannter Alarm / unknown alert"
        status = 403 if error and "link" in error.lower() else 409 if error else 200
        resp = _page("Bestätigen", _ACK.render(error=error, done=done))
        resp.set_status(status)
        return resp

    def twilio_checked(request: web.Request, form: dict[str, str]) -> None:
        token = ds.twilio_auth_token.get_secret_value() if ds.twilio_auth_token else ""
        url = delivery.public_url + request.path_qs
        if not twilio_valid(token, url, form, request.headers.get("X-Twilio-Signature", "")):
            delivery.store.audit(delivery.clock(), "webhook_refused", detail=request.path)
            raise web.HTTPForbidden(text="invalid signature")

    async def twilio_sms(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        twilio_checked(request, form)
        acked = delivery.ack_by_sms(form.get("From", ""), form.get("Body", ""))
        reply = (
            f"Bestätigt / acknowledged: {len(acked)}"
            if acked
            else "Nicht erkannt. Antworten Sie OK und den Code. / Not understood."
        )
        twiml = (
            f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{reply}</Message></Response>'
        )
        return web.Response(text=twiml, content_type="application/xml")

    async def twilio_status(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        twilio_checked(request, form)
        delivery.provider_status(
            form.get("MessageSid", ""), form.get("MessageStatus", ""), form.get("ErrorCode")
        )
        return web.Response(status=204)

    async def drill_report(request: web.Request) -> web.Response:
        await require(request)
        return web.json_response(delivery.drill_report())

    async def style(request: web.Request) -> web.Response:
        return web.Response(text=CSS, content_type="text/css")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[security], client_max_size=64 * 1024)
    app.add_routes(
        [
            web.get("/login", login_form),
            web.post("/login", login),
            web.post("/logout", logout),
            web.get("/", index),
            web.get("/alerts/{alert_id}", alert_page),
            web.post("/alerts/{alert_id}/{action}", action),
            web.get("/ack/{token}", ack_link),
            web.post("/ack/{token}", ack_link),
            web.post("/webhooks/twilio/sms", twilio_sms),
            web.post("/webhooks/twilio/status", twilio_status),
            web.get("/drill-report", drill_report),
            web.get("/style.css", style),
            web.get("/healthz", health),
        ]
    )
    return app


async def start_web(delivery: Delivery, ds: DeliverySettings) -> WebHandle:
    runner = web.AppRunner(build_web(delivery, ds), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, ds.web_host, ds.web_port)
    await site.start()
    server = site._server
    port = ds.web_port
    if server is not None and getattr(server, "sockets", None):
        port = server.sockets[0].getsockname()[1]
    log.info("Krisenraum / crisis room on http://%s:%d", ds.web_host, port)
    return WebHandle(runner, port)
