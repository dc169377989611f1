"""The three services as separate processes on the real broker raise the same alerts as
``stormwatch replay`` on the same scenario, and the crisis team gets the email."""

from __future__ import annotations

import orjson
import pytest
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import ALERTS, MENTIONS_RAW, MENTIONS_SCORED

from stormwatch_cli.replay import replay
from stormwatch_cli.report import AlertReport
from tests.conftest import DRILL
from tests.support.kafka_local import group_lag, read_all
from tests.support.processes import Service, wait_for
from tests.support.smtp_sink import SmtpSink

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]


def test_services_on_kafka_raise_the_same_alerts_as_replay(
    kafka_settings: KafkaSettings, smtp_sink: SmtpSink, tmp_path
) -> None:
    expected = replay(DRILL)
    assert expected["alerts"], "the bundled drill must raise at least one alert"

    env = {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "LISTENER_REPLAY_DIR": str(DRILL),
        "ALERTING_SMTP_PORT": str(smtp_sink.port),
        "ALERTING_EMAIL_TO": "krisenstab@klinikum.example",
    }
    bootstrap = kafka_settings.bootstrap_servers
    services = [Service(n, env, tmp_path) for n in ("alerting", "sentiment")]
    try:
        listener = Service("listener", env, tmp_path)
        listener.proc.wait(timeout=120)
        assert listener.proc.returncode == 0, listener.log()
        raw = kafka_settings.topic(MENTIONS_RAW)
        scored = kafka_settings.topic(MENTIONS_SCORED)
        published = len(read_all(bootstrap, raw))
        assert published == expected["counts"]["events"]
        wait_for(
            lambda: group_lag(bootstrap, "stormwatch-sentiment", raw) == 0,
            120,
            "sentiment to score every mention",
        )
        wait_for(
            lambda: group_lag(bootstrap, "stormwatch-alerting", scored) == 0,
            120,
            "alerting to consume every scored mention",
        )
        assert len(read_all(bootstrap, scored)) == published

        alerts_topic = kafka_settings.topic(ALERTS)
        report = AlertReport()
        from stormwatch_alerting.app import decode_alert

        records = read_all(bootstrap, alerts_topic)
        for key, value in records:
            event = decode_alert(value)
            assert key == event.target_id.encode()
            report.add(event)
        expected_report = AlertReport()
        expected_report._alerts = {a["alert_id"]: a for a in expected["alerts"]}
        assert report.comparable() == expected_report.comparable()

        wait_for(lambda: len(smtp_sink.messages) >= len(records), 60, "alert emails")
        subjects = smtp_sink.subjects()
        assert any("Krisenwarnung" in s for s in subjects), subjects
        body = smtp_sink.messages[0].get_content()
        assert "Warum / why" in body
    finally:
        codes = {s.name: s.stop() for s in services}
    for s in services:
        assert "Traceback" not in s.log(), s.log()
    assert all(code in (0, -15) for code in codes.values()), codes


def test_listener_reports_malformed_lines_and_goes_on(
    kafka_settings: KafkaSettings, tmp_path
) -> None:
    scenario = tmp_path / "scenario"
    scenario.mkdir()
    (scenario / "targets.json").write_bytes((DRILL / "targets.json").read_bytes())
    lines = (DRILL / "mentions.jsonl").read_bytes().splitlines()[:20]
    lines.insert(3, b"{not json")
    lines.insert(7, orjson.dumps({"id": "x:1", "source": "x"}))
    (scenario / "mentions.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    env = {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "LISTENER_REPLAY_DIR": str(scenario),
    }
    listener = Service("listener", env, tmp_path)
    assert listener.proc.wait(timeout=60) == 0, listener.log()
    log = listener.log()
    assert "mentions.jsonl:4: invalid JSON" in log
    assert "mentions.jsonl:8:" in log
    assert "2 fehlerhafte Zeilen" in log
    listener.stop()
