"""Faults on the real broker: killed services, a restarted broker, poison messages,
duplicates. Nothing may be lost, nothing counted twice, no alert lost or doubled."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from stormwatch_alerting.app import decode_alert
from stormwatch_shared.codec import encode
from stormwatch_shared.events import MAX_EVENT_ID_CHARS, Mention, MentionReceived, MentionScored
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import ALERTS, MENTIONS_RAW, MENTIONS_SCORED, dlq

from stormwatch_cli.replay import replay
from stormwatch_cli.report import AlertReport
from tests.conftest import DRILL
from tests.support.kafka_local import (
    KAFKA_SH,
    end_offset_total,
    free_port,
    group_lag,
    read_all,
    remove_kafka_data,
)
from tests.support.processes import Service, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.kafka]

TWO_WEEKS_IN_25_S = str(14 * 86400 / 25)


def _env(kafka: KafkaSettings, **extra: str) -> dict[str, str]:
    return {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "LISTENER_REPLAY_DIR": str(DRILL),
        **extra,
    }


def _drain(kafka: KafkaSettings, timeout: float = 120) -> None:
    b = kafka.bootstrap_servers
    wait_for(
        lambda: (
            group_lag(b, "stormwatch-sentiment", kafka.topic(MENTIONS_RAW)) == 0
            and group_lag(b, "stormwatch-alerting", kafka.topic(MENTIONS_SCORED)) == 0
        ),
        timeout,
        "the pipeline to drain",
    )


def _alert_report(kafka: KafkaSettings) -> AlertReport:
    report = AlertReport()
    for _key, value in read_all(kafka.bootstrap_servers, kafka.topic(ALERTS)):
        report.add(decode_alert(value))
    return report


def _expected() -> list[dict[str, object]]:
    report = AlertReport()
    report._alerts = {a["alert_id"]: a for a in replay(DRILL)["alerts"]}
    return report.comparable()


def _scored_ids(kafka: KafkaSettings) -> list[str]:
    return [
        orjson.loads(v)["received_event_id"]
        for _k, v in read_all(kafka.bootstrap_servers, kafka.topic(MENTIONS_SCORED))
    ]


@pytest.mark.parametrize("victim", ["sentiment", "alerting"])
def test_sigkill_mid_stream_then_restart_loses_and_doubles_nothing(
    kafka_settings: KafkaSettings, tmp_path: Path, victim: str
) -> None:
    env = _env(kafka_settings, LISTENER_REPLAY_SPEED=TWO_WEEKS_IN_25_S)
    running = {n: Service(n, env, tmp_path / "a") for n in ("alerting", "sentiment")}
    (tmp_path / "b").mkdir()
    listener = Service("listener", env, tmp_path / "a")
    try:
        time.sleep(10)  # well into the stream, before the storm in the second week
        assert listener.proc.poll() is None, "the replay ended before the fault"
        running[victim].proc.send_signal(signal.SIGKILL)
        running[victim].proc.wait(10)
        time.sleep(2)
        running[victim] = Service(victim, env, tmp_path / "b")
        assert listener.proc.wait(120) == 0, listener.log()
        _drain(kafka_settings)
        raw = read_all(kafka_settings.bootstrap_servers, kafka_settings.topic(MENTIONS_RAW))
        raw_ids = {orjson.loads(v)["event_id"] for _k, v in raw}
        scored = _scored_ids(kafka_settings)
        # At least once on the wire, exactly once after dedup on event_id.
        assert set(scored) == raw_ids
        assert _alert_report(kafka_settings).comparable() == _expected()
    finally:
        for service in running.values():
            service.stop()
        listener.stop()


# the default model is scored on the event loop (auto); "always" takes the worker thread
# that the transformer engines use, so both routes meet the poison
@pytest.mark.parametrize("scoring_thread", ["auto", "always"])
def test_poison_messages_go_to_the_dead_letter_topic_and_the_consumer_goes_on(
    kafka_settings: KafkaSettings, tmp_path: Path, scoring_thread: str
) -> None:
    raw_topic = kafka_settings.topic(MENTIONS_RAW)
    good = (DRILL / "mentions.jsonl").read_bytes().splitlines()[0]
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    poison = {
        b"bad-json": b"{this is not json",
        b"future-version": orjson.dumps({"schema_version": 7, "type": "MentionReceived"}),
        b"oversized": b'{"x": "' + b"a" * 300_000 + b'"}',
        b"wrong-shape": orjson.dumps({"schema_version": 1, "type": "MentionReceived"}),
    }
    for key, value in poison.items():
        producer.send(raw_topic, key=key, value=value)
    # Valid, but its scored id would once have been too long: scored, not a stuck partition.
    longest = MentionReceived(
        event_id="e" * MAX_EVENT_ID_CHARS,
        occurred_at=datetime(2026, 3, 11, tzinfo=UTC),
        target_id="hospital",
        target_ids=("hospital",),
        mention=Mention.model_validate_json(good),
    )
    producer.send(raw_topic, key=b"hospital", value=encode(longest))
    producer.flush()
    sentiment = Service(
        "sentiment", _env(kafka_settings, SENTIMENT_SCORING_THREAD=scoring_thread), tmp_path
    )
    try:
        # Then a valid mention: it must still be scored after the poison.
        env = _env(kafka_settings)
        scenario = tmp_path / "one"
        scenario.mkdir()
        (scenario / "mentions.jsonl").write_bytes(good + b"\n")
        (scenario / "targets.json").write_bytes((DRILL / "targets.json").read_bytes())
        env["LISTENER_REPLAY_DIR"] = str(scenario)
        assert Service("listener", env, tmp_path).proc.wait(60) == 0
        wait_for(
            lambda: (
                group_lag(kafka_settings.bootstrap_servers, "stormwatch-sentiment", raw_topic) == 0
            ),
            60,
            "sentiment to pass the poison",
        )
        letters = {
            k: orjson.loads(v)
            for k, v in read_all(kafka_settings.bootstrap_servers, dlq(raw_topic))
        }
        assert set(letters) == set(poison)
        assert "invalid JSON" in letters[b"bad-json"]["reason"]
        assert "schema_version 7" in letters[b"future-version"]["reason"]
        assert "too large" in letters[b"oversized"]["reason"]
        assert "schema violation" in letters[b"wrong-shape"]["reason"]
        assert letters[b"bad-json"]["payload"] == "{this is not json"
        assert letters[b"bad-json"]["source_topic"] == raw_topic
        assert letters[b"bad-json"]["offset"] is not None
        published = read_all(kafka_settings.bootstrap_servers, raw_topic)
        valid = {orjson.loads(v)["event_id"] for k, v in published if k not in poison}
        assert longest.event_id in valid and set(_scored_ids(kafka_settings)) == valid
        assert sentiment.proc.poll() is None, "the consumer must not die on poison"
    finally:
        sentiment.stop()
    assert "Traceback" not in sentiment.log()
    route = "in a worker thread" if scoring_thread == "always" else "on the event loop"
    assert f"scoring {route}" in sentiment.log()


def test_mentions_dated_far_ahead_or_decades_back_are_dead_lettered_by_alerting(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    # Before: the target's detector moved to 2099 (with weeks of history behind it, closing
    # every bucket up to then: ~80 s), and every real mention after it counted as late. A
    # date decades back (a missing date read as zero) made the target's next post walk
    # every bucket since then (35 s for 1990, ~60 s for 1970) while the partition waited.
    scored_topic = kafka_settings.topic(MENTIONS_SCORED)
    good = Mention.model_validate_json((DRILL / "mentions.jsonl").read_bytes().splitlines()[0])
    now = datetime.now(UTC).replace(microsecond=0)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    for name, at in (
        ("future", datetime(2099, 1, 1, tzinfo=UTC)),
        ("epoch", datetime(1970, 1, 1, tzinfo=UTC)),
        ("now", now),
    ):
        event = MentionScored(
            event_id=f"{name}|scored",
            occurred_at=at,
            target_id="hospital",
            target_ids=("hospital",),
            mention=good.model_copy(update={"id": f"x:{name}", "created_at": at}),
            label="negative",
            scores={"negative": 0.9, "neutral": 0.05, "positive": 0.05},
            language="de",
            model_id="test",
            received_event_id=name,
        )
        producer.send(scored_topic, key=name.encode(), value=encode(event))
    producer.flush()
    env = _env(kafka_settings, ALERTING_STATE_DB=str(tmp_path / "state.sqlite"))
    alerting = Service("alerting", env, tmp_path)
    try:
        wait_for(
            lambda: (
                group_lag(kafka_settings.bootstrap_servers, "stormwatch-alerting", scored_topic)
                == 0
            ),
            60,
            "alerting to pass the mis-dated mention",
        )
        letters = {
            k: orjson.loads(v)
            for k, v in read_all(kafka_settings.bootstrap_servers, dlq(scored_topic))
        }
        assert set(letters) == {b"future", b"epoch"}
        assert "2099-01-01" in letters[b"future"]["reason"]
        assert "ALERTING_MAX_FUTURE_S" in letters[b"future"]["reason"]
        assert "1970-01-01" in letters[b"epoch"]["reason"]
        assert "ALERTING_MIN_EVENT_TIME" in letters[b"epoch"]["reason"]
        assert alerting.proc.poll() is None
    finally:
        alerting.stop()
    assert "Traceback" not in alerting.log()


def test_a_redelivered_alert_event_notifies_once(
    kafka_settings: KafkaSettings, smtp_sink, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from stormwatch_shared.codec import encode
    from stormwatch_shared.events import CrisisAlertRaised

    alert = CrisisAlertRaised(
        event_id="paula:1|raised|warning",
        occurred_at=datetime(2026, 3, 11, 16, 0, tzinfo=UTC),
        alert_id="paula:1",
        target_id="paula",
        target_name="Paula Brandt",
        level="warning",
    )
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    for _ in range(3):
        producer.send(kafka_settings.topic(ALERTS), key=b"paula", value=encode(alert))
    producer.flush()
    env = _env(
        kafka_settings,
        ALERTING_SMTP_PORT=str(smtp_sink.port),
        ALERTING_EMAIL_TO="krisenstab@example.org",
        ALERTING_STATE_DB=str(tmp_path / "state.sqlite"),
    )
    alerting = Service("alerting", env, tmp_path)
    try:
        wait_for(lambda: len(smtp_sink.messages) >= 1, 60, "the alert email")
        wait_for(
            lambda: (
                group_lag(
                    kafka_settings.bootstrap_servers,
                    "stormwatch-delivery",
                    kafka_settings.topic(ALERTS),
                )
                == 0
            ),
            60,
            "delivery to consume all three copies",
        )
        time.sleep(1)
        assert len(smtp_sink.messages) == 1
    finally:
        alerting.stop()


def test_broker_restart_mid_stream_loses_nothing(tmp_path: Path) -> None:
    """A dedicated broker, restarted while the listener publishes and sentiment consumes."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="stormwatch-kafka-restart-"))
    subprocess.run([str(KAFKA_SH), "start", str(port), str(data)], check=True)
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", topic_prefix="r.", partitions=3)
    services: list[Service] = []
    try:
        from stormwatch_shared.kafka import ensure_topics

        ensure_topics(kafka)
        env = _env(kafka, LISTENER_REPLAY_SPEED=TWO_WEEKS_IN_25_S)
        services = [Service(n, env, tmp_path) for n in ("alerting", "sentiment")]
        listener = Service("listener", env, tmp_path)
        services.append(listener)
        # "Mid-stream" means the stream is flowing: on a loaded machine the services can take
        # longer than a fixed sleep to start, and a broker stopped before the listener's first
        # connection tests start-up, not a restart. Stop it once mentions are being written
        # and scored, with most of the replay still to come.
        b = kafka.bootstrap_servers
        wait_for(
            lambda: (
                end_offset_total(b, kafka.topic(MENTIONS_RAW)) > 0
                and end_offset_total(b, kafka.topic(MENTIONS_SCORED)) > 0
            ),
            120,
            "mentions flowing through sentiment",
        )
        assert listener.proc.poll() is None, "the replay finished before the broker restart"
        subprocess.run([str(KAFKA_SH), "stop", str(data)], check=True)
        time.sleep(3)
        subprocess.run([str(KAFKA_SH), "start", str(port), str(data)], check=True)
        assert listener.proc.wait(180) == 0, listener.log()
        _drain(kafka, 180)
        raw_ids = {
            orjson.loads(v)["event_id"]
            for _k, v in read_all(kafka.bootstrap_servers, kafka.topic(MENTIONS_RAW))
        }
        expected = replay(DRILL)["counts"]["events"]
        assert len(raw_ids) == expected
        assert set(_scored_ids(kafka)) == raw_ids
        assert _alert_report(kafka).comparable() == _expected()
    finally:
        for service in services:
            service.stop()
        subprocess.run([str(KAFKA_SH), "stop", str(data)], check=False)
        remove_kafka_data(data)
