"""The alerting service, started as an operator would with every secret set, never writes a
secret to its log: not at start, not while delivery fails against unreachable providers."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer
from stormwatch_shared.codec import encode
from stormwatch_shared.events import CrisisAlertRaised
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import ALERTS

from tests.integration.test_delivery_pipeline import _with_base, routing
from tests.support.processes import Service, wait_for
from tests.support.smtp_sink import SmtpSink

pytestmark = [pytest.mark.privacy, pytest.mark.kafka]

SECRETS = {
    "ALERTING_ACK_SECRET": "ack-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "ALERTING_TWILIO_AUTH_TOKEN": "twilio-tok-5be6a1c9d3",
    "ALERTING_HTTP_SMS_API_KEY": "gw-key-77ac1e9b02",
    "ALERTING_NTFY_TOKEN": "tk_ntfy9d1c0e7ab3",
    "ALERTING_GRAFANA_TOKEN": "glsa_grafana4f2e9c1b",
}
SMTP_PASSWORD = "smtp-pw-3c8e1f0a9b"


def test_secrets_never_reach_the_log(
    kafka_settings: KafkaSettings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    dead = "http://127.0.0.1:9"  # discard port: every provider call fails and gets logged
    # No quiet hours: the service runs on the wall clock, and at night they would hold back
    # the SMS, push and chat attempts whose failures this test needs in the log.
    doc = _with_base(routing(quiet_hours=None), dead)
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "smtp_pw").write_text(SMTP_PASSWORD)
    env = {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "ALERTING_METRICS_PORT": "0",
        "ALERTING_ROUTING_FILE": str(tmp_path / "routing.yaml"),
        "ALERTING_STATE_DB": str(tmp_path / "state.sqlite3"),
        "ALERTING_WEB_PORT": "0",
        "ALERTING_SMTP_PORT": str(smtp_sink.port),
        "ALERTING_SMTP_USERNAME": "stormwatch",
        "ALERTING_SMTP_PASSWORD_FILE": str(tmp_path / "smtp_pw"),
        "ALERTING_TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
        "ALERTING_TWILIO_FROM": "+4930000000",
        "ALERTING_TWILIO_BASE_URL": dead,
        "ALERTING_HTTP_SMS_URL": f"{dead}/gateway/sms",
        "ALERTING_NTFY_URL": f"{dead}/ntfy",
        "ALERTING_GRAFANA_URL": f"{dead}/grafana",
        "ALERTING_RETRY_ATTEMPTS": "1",
        "STORMWATCH_LOG_LEVEL": "DEBUG",
        **SECRETS,
    }
    alert = CrisisAlertRaised(
        occurred_at=datetime(2026, 3, 11, 11, 0, tzinfo=UTC),
        alert_id="hospital:1",
        target_id="hospital",
        target_name="Klinikum Nordstadt",
        level="warning",
    )
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    producer.send(kafka_settings.topic(ALERTS), key=b"hospital", value=encode(alert))
    producer.flush()
    producer.close()
    service = Service("alerting", env, tmp_path)

    def failed_channels() -> set[str]:
        con = sqlite3.connect(tmp_path / "state.sqlite3")
        try:
            rows = con.execute("SELECT channel FROM audit WHERE outcome='failed'").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return set()
        finally:
            con.close()
        return {r[0] for r in rows}

    def attempted() -> bool:
        assert service.proc.poll() is None, service.log()[-2000:]
        return failed_channels() >= {"email", "sms", "push", "chat", "grafana"}

    try:
        # the SMTP login fails (the sink offers no AUTH); SMS, push, chat, Grafana fail
        wait_for(attempted, 90, "delivery attempts in the log")
        time.sleep(1.0)
    finally:
        service.stop()
    log = service.log()
    assert "Twilio API Request" in log, "the log must have content to mean anything"
    con = sqlite3.connect(tmp_path / "state.sqlite3")
    try:
        audit = "\n".join(con.iterdump())  # the audit log with every failure's detail
    finally:
        con.close()
    for name, value in {**SECRETS, "ALERTING_SMTP_PASSWORD": SMTP_PASSWORD}.items():
        assert value not in log, f"{name} leaked into the log"
        assert value not in audit, f"{name} leaked into the audit log"
