"""Acknowledgement credentials: signed one-click links and SMS reply keywords.

A link carries alert, person, expiry and a random nonce, signed with HMAC-SHA256; the
store remembers used nonces so each link works once. Twilio's webhook signature (HMAC-SHA1
over URL plus sorted form fields, base64) is checked here too, so a forged 'OK' cannot
acknowledge a crisis. Pure: the secret, the nonce and the time are passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime


class AckTokenError(ValueError):
    """The link is malformed, tampered with or expired (the reason is in the message)."""


@dataclass(frozen=True, slots=True)
class AckClaims:
    alert_id: str
    person: str
    expires: datetime
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_ack(secret: bytes, alert_id: str, person: str, expires: datetime, nonce: str) -> str:
    if not secret:
        raise ValueError("ack secret must not be empty")
    payload = "\n".join((alert_id, person, str(int(expires.timestamp())), nonce)).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify_ack(secret: bytes, token: str, now: datetime) -> AckClaims:
    try:
        body, mac = token.split(".")
        payload, given = _unb64(body), _unb64(mac)
    except (ValueError, TypeError) as exc:
        raise AckTokenError("malformed link") from exc
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise AckTokenError("invalid signature")
    try:
        alert_id, person, expires_s, nonce = payload.decode().split("\n")
        expires = datetime.fromtimestamp(int(expires_s), UTC)
    except ValueError as exc:  # only reachable with a leaked secret; still refuse cleanly
        raise AckTokenError("malformed link") from exc
    if now >= expires:
        raise AckTokenError("link expired")
    return AckClaims(alert_id, person, expires, nonce)


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's X-Twilio-Signature for a form POST to ``url``."""
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def twilio_valid(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    if not auth_token or not signature:
        return False
    return hmac.compare_digest(twilio_signature(auth_token, url, params), signature)


_REPLY = re.compile(r"^\s*(ok|ack|quittiert|bestätigt|bestaetigt|ja)\b\s*#?\s*(\w+)?", re.I)


def parse_reply(body: str) -> tuple[bool, str | None]:
    """Whether an SMS reply acknowledges, and the alert code it names (if any).

    'OK 4821', 'ack', 'Bestätigt 4821': the keyword must start the text so a reply such as
    'nicht ok' is not read as an acknowledgement.
    """
    m = _REPLY.match(body)
    if m is None:
        return False, None
    return True, m.group(2).upper() if m.group(2) else None
