from __future__ import annotations

import pytest
from stormwatch_alerting.settings import AlertingSettings
from stormwatch_listener.settings import ListenerSettings
from stormwatch_sentiment.settings import SentimentSettings
from stormwatch_shared.settings import KafkaSettings, SettingsError, load_settings

from tests.conftest import DRILL


@pytest.mark.parametrize(
    ("cls", "env", "named"),
    [
        (
            KafkaSettings,
            {"STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": "nohost"},
            "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS",
        ),
        (KafkaSettings, {"STORMWATCH_KAFKA_PARTITIONS": "zero"}, "STORMWATCH_KAFKA_PARTITIONS"),
        (KafkaSettings, {"STORMWATCH_KAFKA_COMPRESSION": "zstd"}, "STORMWATCH_KAFKA_COMPRESSION"),
        (SentimentSettings, {"SENTIMENT_ENGINE": "magic"}, "SENTIMENT_ENGINE"),
        (SentimentSettings, {"SENTIMENT_ENGINE": "onnx"}, "SENTIMENT_MODEL_PATH"),
        (AlertingSettings, {"ALERTING_SMTP_PORT": "70000"}, "ALERTING_SMTP_PORT"),
        (AlertingSettings, {"ALERTING_EMAIL_TO": "not-an-address"}, "ALERTING_EMAIL_TO"),
        (AlertingSettings, {"ALERTING_SENSITIVITY": "paranoid"}, "ALERTING_SENSITIVITY"),
        (AlertingSettings, {"ALERTING_MIN_EVENT_TIME": "yesterday"}, "ALERTING_MIN_EVENT_TIME"),
        # without a UTC offset the instant is ambiguous: refused rather than guessed
        (
            AlertingSettings,
            {"ALERTING_MIN_EVENT_TIME": "2000-01-01T00:00:00"},
            "ALERTING_MIN_EVENT_TIME",
        ),
        (ListenerSettings, {"LISTENER_REPLAY_DIR": "/nonexistent"}, "LISTENER_REPLAY_DIR"),
        (
            ListenerSettings,
            {"LISTENER_REPLAY_DIR": str(DRILL), "LISTENER_REPLAY_SPEED": "fast"},
            "LISTENER_REPLAY_SPEED",
        ),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, cls: type, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings(cls)
    message = str(info.value)
    assert named in message
    assert "Konfigurationsfehler" in message


def test_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTING_SMTP_PORT", "s3cr3t-value")
    with pytest.raises(SettingsError) as info:
        load_settings(AlertingSettings)
    assert "s3cr3t-value" not in str(info.value)


def test_good_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTING_EMAIL_TO", "a@x.example, b@x.example")
    assert load_settings(AlertingSettings).email_to == ["a@x.example", "b@x.example"]
    monkeypatch.setenv("LISTENER_REPLAY_DIR", str(DRILL))
    monkeypatch.setenv("LISTENER_REPLAY_SPEED", "60")
    assert load_settings(ListenerSettings).speed_factor == 60.0


@pytest.mark.parametrize(("value", "codec"), [(None, None), ("none", None), ("lz4", "lz4")])
def test_producer_compression_follows_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str | None, codec: str | None
) -> None:
    from stormwatch_shared.kafka import PRODUCER_DEFAULTS, producer_config

    if value is not None:
        monkeypatch.setenv("STORMWATCH_KAFKA_COMPRESSION", value)
    config = producer_config(load_settings(KafkaSettings))
    assert config["compression_type"] == codec
    assert config["acks"] == "all" and config["enable_idempotence"] is True
    assert PRODUCER_DEFAULTS["compression_type"] is None  # the shared defaults stay as they are


def test_the_changelog_is_compressed_by_the_broker() -> None:
    from stormwatch_shared.topics import DETECTOR_CHANGELOG, topic_specs

    configs = {spec.name: spec.config for spec in topic_specs()}
    assert configs[DETECTOR_CHANGELOG]["compression.type"] == "lz4"
    assert all("compression.type" not in c for n, c in configs.items() if n != DETECTOR_CHANGELOG)


@pytest.mark.parametrize(
    ("engine", "choice", "in_thread"),
    [
        ("default", "auto", False),  # ~15 ms per batch: the hand-over costs more
        ("onnx", "auto", True),  # seconds per batch: the event loop must stay free
        ("pipeline", "auto", True),
        ("default", "always", True),
        ("onnx", "never", False),
    ],
)
def test_where_batches_are_scored(
    monkeypatch: pytest.MonkeyPatch, engine: str, choice: str, in_thread: bool
) -> None:
    monkeypatch.setenv("SENTIMENT_ENGINE", engine)
    monkeypatch.setenv("SENTIMENT_MODEL_PATH", "/models/x")
    monkeypatch.setenv("SENTIMENT_SCORING_THREAD", choice)
    assert load_settings(SentimentSettings).score_in_thread is in_thread


def test_an_unknown_scoring_thread_choice_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTIMENT_SCORING_THREAD", "sometimes")
    with pytest.raises(SettingsError, match="SENTIMENT_SCORING_THREAD"):
        load_settings(SentimentSettings)
