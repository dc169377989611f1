"""The crisis room in headless Chromium (DevTools protocol over ``websockets``): login,
the alert with its explanation and (escaped) top posts, acknowledge by button, audit trail;
plus security headers and CSRF refusal checked over plain HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from stormwatch_alerting.delivery.service import Delivery
from stormwatch_alerting.delivery.settings import DeliverySettings
from stormwatch_alerting.domain.routing import parse_routing
from stormwatch_alerting.settings import AlertingSettings
from stormwatch_alerting.web.auth import hash_password
from stormwatch_shared.events import CrisisAlertRaised, Evidence

from tests.support.smtp_sink import SmtpSink

pytestmark = [pytest.mark.browser, pytest.mark.delivery]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">Station 4'

ROUTING = {
    "people": [{"id": "anna", "name": "Anna Schmidt", "email": "anna@klinikum.example"}],
    "rotations": [{"id": "comms", "members": ["anna"], "start": "2026-01-05T08:00:00+01:00"}],
    "routes": [
        {
            "name": "all",
            "levels": ["watch", "warning", "critical"],
            "steps": [{"recipients": ["oncall:comms"], "channels": ["email"]}],
        }
    ],
}


class Cdp:
    """Just enough of the Chrome DevTools protocol: commands and a polled evaluate."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.ids = ws, itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg.get("result", {})

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def until(self, expression: str, limit_s: float = 15.0) -> Any:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        state = await self.js(
            "location.href + ' | ' + (document.body ? document.body.innerText.slice(0, 300) : '')"
        )
        raise AssertionError(f"never true in the browser: {expression} ({state})")


async def _chromium(profile: Path) -> tuple[asyncio.subprocess.Process, int]:
    assert CHROMIUM, "chromium missing: apt-get install -y chromium"
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    for _ in range(300):
        if port_file.exists() and port_file.read_text().strip():
            return proc, int(port_file.read_text().split()[0])
        await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("chromium did not start")


def test_login_view_and_acknowledge_in_headless_chromium(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    async def main() -> None:
        ds = DeliverySettings(
            state_db=tmp_path / "state.sqlite3",
            ack_secret="k" * 32,
            web_enabled=True,
            web_port=0,
            web_users=[f"anna:{hash_password('Krisen-Passwort-1')}"],
            public_url="http://127.0.0.1",
            tick_s=300,
        )
        delivery = Delivery(
            AlertingSettings(smtp_port=smtp_sink.port),
            delivery_settings=ds,
            routing=parse_routing(ROUTING),
        )
        await delivery.start()
        await delivery.handle(
            CrisisAlertRaised(
                occurred_at=datetime.now(UTC),
                alert_id="hospital-1",
                target_id="hospital",
                target_name="Klinikum Nordstadt",
                target_kind="organisation",
                level="warning",
                evidence=Evidence(
                    observed=48,
                    expected=6,
                    negative_share=0.7,
                    distinct_authors=30,
                    top_posts=({"text": EVIL, "url": "https://social.example/1"},),
                ),
            )
        )
        base = f"http://127.0.0.1:{delivery.web.port}"
        proc, port = await _chromium(tmp_path / "profile")
        try:
            async with httpx.AsyncClient() as http:
                pages = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                ws_url = next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"]
                # Unauthenticated: redirected to the login page, with strict headers.
                resp = await http.get(f"{base}/alerts/hospital-1")
                assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
                assert "script-src" not in resp.headers["Content-Security-Policy"]
                assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
                assert resp.headers["X-Frame-Options"] == "DENY"
            async with websockets.connect(ws_url, max_size=2**24) as ws:
                cdp = Cdp(ws)
                await cdp.call("Page.enable")
                await cdp.call("Page.navigate", url=f"{base}/alerts/hospital-1")
                await cdp.until(
                    "location.pathname === '/login' && !!document.getElementById('user')"
                )
                await cdp.js(
                    "document.getElementById('user').value='anna';"
                    "document.getElementById('password').value='Krisen-Passwort-1';"
                    "document.getElementById('login').click()"
                )
                await cdp.until("location.pathname === '/alerts/hospital-1'")
                text = await cdp.until("document.body && document.body.innerText")
                assert "Warnung: Klinikum Nordstadt" in text and "Warum / why" in text
                assert "<script>window.__pwned=1</script>" in text  # shown as text
                assert await cdp.js("typeof window.__pwned") == "undefined"
                assert (
                    await cdp.js("document.querySelectorAll('#posts script, #posts img').length")
                    == 0
                )
                assert await cdp.js("document.documentElement.lang") == "de"
                await cdp.js("document.getElementById('ack').click()")
                await cdp.until(
                    "document.getElementById('status') && "
                    "document.getElementById('status').innerText === 'acknowledged'"
                )
                audit = await cdp.js("document.getElementById('audit').innerText")
                assert "acknowledged" in audit and "crisis_room" in audit
                cookies = (await cdp.call("Storage.getCookies"))["cookies"]
            session = next(c for c in cookies if c["name"] == "sw_session")
            assert session["httpOnly"] and session["sameSite"] == "Strict"
            async with httpx.AsyncClient(cookies={"sw_session": session["value"]}) as http:
                forged = await http.post(f"{base}/alerts/hospital-1/resolve", data={"csrf": "x"})
                assert forged.status_code == 403  # a valid session without the CSRF token
        finally:
            proc.terminate()
            await proc.wait()
            group = delivery.store.group("hospital-1")
            await delivery.stop()
        assert group is not None and group.status == "acknowledged" and group.acked_by == "anna"

    asyncio.run(main())
