"""Acknowledge links (valid, expired, tampered), Twilio signatures, SMS reply keywords."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from stormwatch_alerting.domain.ack import (
    AckTokenError,
    parse_reply,
    sign_ack,
    twilio_signature,
    twilio_valid,
    verify_ack,
)
from stormwatch_alerting.web.auth import Signer, hash_password, verify_password

pytestmark = pytest.mark.delivery

KEY = b"k" * 32
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_valid_link_round_trips() -> None:
    token = sign_ack(KEY, "hospital-1", "anna", NOW + timedelta(hours=1), "n1")
    claims = verify_ack(KEY, token, NOW)
    assert (claims.alert_id, claims.person, claims.nonce) == ("hospital-1", "anna", "n1")


@pytest.mark.parametrize(
    ("mutate", "at", "reason"),
    [
        (lambda t: t, NOW + timedelta(hours=1), "expired"),
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), NOW, "invalid signature"),
        (
            lambda t: (
                base64.urlsafe_b64encode(b"hospital-1\nben\n9999999999\nn1").decode().rstrip("=")
                + "."
                + t.split(".")[1]
            ),
            NOW,
            "invalid signature",
        ),
        (lambda t: t.replace(".", ""), NOW, "malformed"),
        (lambda t: "", NOW, "malformed"),
    ],
)
def test_expired_or_tampered_links_are_refused(mutate, at: datetime, reason: str) -> None:
    token = sign_ack(KEY, "hospital-1", "anna", NOW + timedelta(hours=1), "n1")
    with pytest.raises(AckTokenError, match=reason):
        verify_ack(KEY, mutate(token), at)


def test_link_signed_with_another_key_is_refused() -> None:
    token = sign_ack(b"other" * 8, "hospital-1", "anna", NOW + timedelta(hours=1), "n1")
    with pytest.raises(AckTokenError, match="invalid signature"):
        verify_ack(KEY, token, NOW)


def test_twilio_signature_matches_the_documented_algorithm() -> None:
    url = "https://krisenraum.example/webhooks/twilio/sms"
    params = {"From": "+4915100000001", "Body": "OK 4821", "AccountSid": "AC1"}
    data = url + "AccountSidAC1" + "BodyOK 4821" + "From+4915100000001"
    expected = base64.b64encode(hmac.new(b"tok", data.encode(), hashlib.sha1).digest()).decode()
    assert twilio_signature("tok", url, params) == expected
    assert twilio_valid("tok", url, params, expected)
    assert not twilio_valid("tok", url, {**params, "Body": "OK 1111"}, expected)
    assert not twilio_valid("", url, params, expected)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("OK 4821", (True, "4821")),
        ("ok", (True, None)),
        ("  Bestätigt #4821 danke", (True, "4821")),
        ("ACK 12ab", (True, "12AB")),
        ("nicht ok", (False, None)),
        ("Wer ist das?", (False, None)),
        ("okay", (False, None)),
    ],
)
def test_sms_reply_keywords(body: str, expected: tuple[bool, str | None]) -> None:
    assert parse_reply(body) == expected


def test_password_hash_and_session_cookie() -> None:
    stored = hash_password("Geheim-123")
    assert stored.startswith("scrypt$") and verify_password("Geheim-123", stored)
    assert not verify_password("geheim-123", stored)
    signer = Signer(KEY)
    cookie = signer.session_cookie("anna", 2_000)
    session = signer.read_session(cookie, 1_000)
    assert session is not None and session.user == "anna"
    assert signer.read_session(cookie, 2_000) is None  # expired
    assert signer.read_session(cookie[:-1] + ("A" if cookie[-1] != "A" else "B"), 1_000) is None
    assert signer.csrf_ok(session.nonce, signer.csrf(session.nonce))
    assert not signer.csrf_ok("other-session", signer.csrf(session.nonce))
