"""`stormwatch drill` injects a scenario into the live pipeline, and everything that follows
is marked as a drill: the alert events, every email, and the drill report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import ALERTS, MENTIONS_RAW, MENTIONS_SCORED

from tests.conftest import DRILL, REPO
from tests.support.kafka_local import group_lag, read_all
from tests.support.processes import Service, wait_for
from tests.support.smtp_sink import SmtpSink

ROUTING = """
timezone: Europe/Berlin
people:
  - {id: anna, name: Anna Schmidt, email: anna@klinikum.example, language: de}
teams:
  - {id: komm, name: Kommunikation, members: [anna]}
routes:
  - name: all
    levels: [watch, warning, critical]
    ack_timeout_minutes: 15
    steps:
      - {recipients: ["team:komm"], channels: [email]}
"""

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.delivery]


def test_drill_marks_every_event_and_email(
    kafka_settings: KafkaSettings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING, encoding="utf-8")
    env = {
        "ALERTING_ROUTING_FILE": str(routing),
        "ALERTING_ACK_SECRET": "drill-test-secret-0123456789abcdef",
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "ALERTING_SMTP_PORT": str(smtp_sink.port),
        "ALERTING_EMAIL_TO": "krisenstab@example.org",
        "ALERTING_STATE_DB": str(tmp_path / "state.sqlite3"),
    }
    services = [Service(n, env, tmp_path) for n in ("alerting", "sentiment")]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "stormwatch_cli", "drill", str(DRILL)],
            env={**__import__("os").environ, **env},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "ÜBUNG / DRILL" in done.stderr
        b = kafka_settings.bootstrap_servers
        raw = read_all(b, kafka_settings.topic(MENTIONS_RAW))
        assert raw and all(orjson.loads(v)["drill"] is True for _k, v in raw)
        wait_for(
            lambda: (
                group_lag(b, "stormwatch-sentiment", kafka_settings.topic(MENTIONS_RAW)) == 0
                and group_lag(b, "stormwatch-alerting", kafka_settings.topic(MENTIONS_SCORED)) == 0
            ),
            120,
            "the drill to drain",
        )
        alerts = [orjson.loads(v) for _k, v in read_all(b, kafka_settings.topic(ALERTS))]
        assert alerts, "the bundled drill raises alerts"
        assert all(a["drill"] is True for a in alerts)
        wait_for(lambda: len(smtp_sink.messages) >= 1, 60, "drill emails")
        for msg in smtp_sink.messages:
            assert "ÜBUNG / DRILL" in str(msg["Subject"])
            assert "ÜBUNG / DRILL" in msg.get_body(("plain",)).get_content()
    finally:
        for s in services:
            s.stop()
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "stormwatch_cli",
            "drill",
            "--report",
            str(tmp_path / "state.sqlite3"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    drill_alerts = json.loads(report.stdout)["alerts"]
    assert {a["target"] for a in drill_alerts} == {a["target_id"] for a in alerts}
    assert all(a["pages"] for a in drill_alerts), drill_alerts
