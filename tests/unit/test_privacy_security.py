"""Secrets from files, config errors without values, size caps on what comes from outside."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError
from stormwatch_alerting.delivery.settings import DeliverySettings
from stormwatch_alerting.settings import AlertingSettings
from stormwatch_listener.domain.normalize import x_mention
from stormwatch_listener.settings import ListenerSettings
from stormwatch_shared.codec import MAX_MESSAGE_BYTES, DecodeError, decode
from stormwatch_shared.events import MAX_TEXT_CHARS, Author, Mention, MentionReceived
from stormwatch_shared.settings import RetentionSettings, SettingsError, load_settings

from tests.conftest import DRILL

pytestmark = pytest.mark.privacy

SECRET = "hunter2-Zz9-very-secret"


@pytest.mark.parametrize(
    ("cls", "var", "field"),
    [
        (AlertingSettings, "ALERTING_SMTP_PASSWORD", "smtp_password"),
        (DeliverySettings, "ALERTING_ACK_SECRET", "ack_secret"),
        (DeliverySettings, "ALERTING_TWILIO_AUTH_TOKEN", "twilio_auth_token"),
        (ListenerSettings, "LISTENER_X_BEARER_TOKEN", "x_bearer_token"),
    ],
)
def test_secrets_come_from_files_named_by_the_file_variable(
    cls: type, var: str, field: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    monkeypatch.setenv("LISTENER_REPLAY_DIR", str(DRILL))  # the listener needs a source
    monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(f"{var}_FILE", str(path))
    settings = load_settings(cls)
    assert getattr(settings, field).get_secret_value() == SECRET  # newline stripped
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def test_variable_and_file_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "s").write_text(SECRET)
    monkeypatch.setenv("ALERTING_SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("ALERTING_SMTP_PASSWORD_FILE", str(tmp_path / "s"))
    with pytest.raises(SettingsError) as info:
        load_settings(AlertingSettings)
    assert "ALERTING_SMTP_PASSWORD_FILE" in str(info.value) and SECRET not in str(info.value)


def test_an_unreadable_secret_file_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTING_ACK_SECRET_FILE", "/nonexistent/ack")
    with pytest.raises(SettingsError) as info:
        load_settings(DeliverySettings)
    assert "ALERTING_ACK_SECRET_FILE" in str(info.value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("STORMWATCH_RETENTION_MENTIONS_DAYS", SECRET),
        ("STORMWATCH_RETENTION_TEXTS_DAYS", "0"),
        ("ALERTING_ACK_LINK_TTL_MINUTES", SECRET),
        ("ALERTING_WEB_PORT", "-1"),
    ],
)
def test_config_errors_name_the_key_not_the_value(
    var: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTING_TWILIO_AUTH_TOKEN", SECRET)  # set, valid, never echoed
    monkeypatch.setenv(var, value)
    cls = RetentionSettings if var.startswith("STORMWATCH_RETENTION") else DeliverySettings
    with pytest.raises(SettingsError) as info:
        load_settings(cls)
    assert var in str(info.value)
    assert SECRET not in str(info.value)


def _received(text: str) -> dict[str, object]:
    mention = Mention(
        id="x:1",
        source="x",
        created_at=datetime(2026, 3, 2, tzinfo=UTC),
        text="ok",
        author=Author(id="u1", handle="@a"),
    )
    event = MentionReceived(
        occurred_at=mention.created_at, target_id="t", target_ids=("t",), mention=mention
    )
    data = event.model_dump(mode="json")
    data["mention"]["text"] = text  # type: ignore[index]
    return data


@pytest.mark.parametrize(
    ("size", "accepted"),
    [(MAX_TEXT_CHARS, True), (MAX_TEXT_CHARS + 1, False)],
)
def test_texts_above_the_cap_are_refused_at_the_schema(size: int, accepted: bool) -> None:
    raw = orjson.dumps(_received("a" * size))
    if accepted:
        assert len(decode(raw, MentionReceived).mention.text) == size
    else:
        with pytest.raises(DecodeError, match="text"):
            decode(raw, MentionReceived)


def test_oversized_messages_are_refused_before_parsing() -> None:
    raw = orjson.dumps(_received("a" * 100))
    padded = raw[:-1] + b"," + b'"pad":"' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    with pytest.raises(DecodeError, match="too large"):
        decode(padded, MentionReceived)


def test_sources_cut_long_texts_instead_of_dropping_the_post() -> None:
    payload = {
        "data": {
            "id": "1",
            "text": "b" * (MAX_TEXT_CHARS * 3),
            "created_at": "2026-03-02T10:00:00Z",
            "author_id": "42",
        },
        "includes": {"users": [{"id": "42", "username": "someone"}]},
    }
    assert len(x_mention(payload).text) == MAX_TEXT_CHARS


@pytest.mark.parametrize("field", ["id", "handle"])
def test_author_fields_are_capped(field: str) -> None:
    values = {"id": "u", "handle": "@u", field: "x" * 201}
    with pytest.raises(ValidationError):
        Author(**values)  # type: ignore[arg-type]
