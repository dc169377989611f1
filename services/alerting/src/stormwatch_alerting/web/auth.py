"""Passwords, sessions and CSRF tokens for the crisis room.

Passwords are stored as scrypt hashes (memory-hard, in the standard library); sessions are
HMAC-signed cookies carrying user, expiry and a nonce, so the service keeps no session
table and a restart does not log the crisis team out mid-incident.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def parse_users(entries: list[str]) -> dict[str, str]:
    users = {}
    for entry in entries:
        name, sep, stored = entry.partition(":")
        if not sep or not name or not stored.startswith("scrypt$"):
            raise ValueError(
                f"ALERTING_WEB_USERS entry {name or entry[:10]!r}: expected name:scrypt$..."
            )
        users[name] = stored
    return users


@dataclass(frozen=True)
class Session:
    user: str
    expires: int
    nonce: str


class Signer:
    def __init__(self, secret: bytes) -> None:
        self.key = hashlib.sha256(b"stormwatch-crisis-room-session\0" + secret).digest()

    def _mac(self, data: str) -> str:
        return _b64(hmac.new(self.key, data.encode(), hashlib.sha256).digest())

    def session_cookie(self, user: str, expires: int) -> str:
        body = f"{user}|{expires}|{secrets.token_urlsafe(12)}"
        return f"{_b64(body.encode())}.{self._mac(body)}"

    def read_session(self, cookie: str, now: int) -> Session | None:
        try:
            body_b64, mac = cookie.split(".")
            body = _unb64(body_b64).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(self._mac(body), mac):
            return None
        user, expires, nonce = body.split("|")
        if int(expires) <= now:
            return None
        return Session(user, int(expires), nonce)

    def csrf(self, binding: str) -> str:
        """A token bound to the session (or pre-login cookie): a third site cannot know it."""
        return self._mac("csrf|" + binding)

    def csrf_ok(self, binding: str, token: str) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(binding), token)
