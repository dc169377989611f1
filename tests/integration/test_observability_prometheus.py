"""A real Prometheus scrapes the real services during the bundled drill.

The fixture starts the real broker (session fixture), the sentiment and alerting services as
processes, and Prometheus on a free port with a generated scrape config and the repository's
alert rules. The drill is replayed in two parts, so Prometheus sees each target's zero alert
counters before the storm (as it would in production, where targets are watched for weeks).
E-mail goes to a closed port, so notification failures are real, and one malformed message
is published, so a real dead letter is counted.

Then every dashboard query and every rule expression is evaluated through /api/v1/query.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kafka import KafkaProducer
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import MENTIONS_RAW

from stormwatch_cli.replay import replay
from tests.conftest import DRILL, REPO
from tests.support.kafka_local import free_port
from tests.support.processes import Service, wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.kafka, pytest.mark.e2e]

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
RULES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))

# The listener is not scraped here: in a drill it exits when the replay is published (live
# sources run for ever, and compose scrapes it there).
SCRAPED = ("sentiment", "alerting")

# Grafana's built-in variables, replaced as Grafana would for a short dashboard range.
GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__range": "15m",
    "$__interval": "15s",
    "$target": ".+",
}

# Rules that must fire in this drill (real failures were injected) and those that must not.
FIRING = {"StormwatchWatchdog", "StormwatchDeadLettersGrowing", "StormwatchNotificationsFailing"}
QUIET_SIGNAL = {
    # rule -> the series it watches, which must exist although the rule stays quiet
    "StormwatchServiceDown": 'up{job=~"stormwatch-.*"}',
    "StormwatchConsumerLagGrowing": "stormwatch_consumer_lag_messages",
    "StormwatchSourceSilent": "stormwatch_source_last_scored_timestamp_seconds",
    "StormwatchNoMentionsAtAll": "stormwatch_source_last_scored_timestamp_seconds",
    "StormwatchHandlerErrors": "faststream_received_processed_messages_total",
}
FORBIDDEN_LABEL_WORDS = {
    "author",
    "authors",
    "handle",
    "handles",
    "mention",
    "mentions",
    "user",
    "users",
    "username",
    "text",
    "texts",
}


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""  # not listening (yet)


@dataclass
class Drill:
    prom: str
    ports: dict[str, int]
    services: dict[str, Service]
    expected: dict[str, Any]
    started: float

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_get(url)
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", f"{expr}: {data}"
        return list(data["data"]["result"])

    def query_range(self, expr: str) -> list[dict[str, Any]]:
        params = {"query": expr, "start": self.started, "end": time.time(), "step": "1"}
        status, body = http_get(f"{self.prom}/api/v1/query_range?" + urllib.parse.urlencode(params))
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", f"{expr}: {data}"
        return list(data["data"]["result"])

    def api(self, path: str) -> Any:
        status, body = http_get(f"{self.prom}{path}")
        assert status == 200, body
        return json.loads(body)["data"]


def prometheus_config(ports: dict[str, int]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in RULES],
        "scrape_configs": [
            {
                "job_name": f"stormwatch-{name}",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{ports[name]}"], "labels": {"service": name}}
                ],
            }
            for name in SCRAPED
        ],
    }


def write_part(folder: Path, lines: list[bytes]) -> Path:
    folder.mkdir(parents=True)
    (folder / "targets.json").write_bytes((DRILL / "targets.json").read_bytes())
    (folder / "mentions.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return folder


def run_listener(env: dict[str, str], scenario: Path, log_dir: Path) -> None:
    listener = Service("listener", {**env, "LISTENER_REPLAY_DIR": str(scenario)}, log_dir)
    assert listener.proc.wait(timeout=120) == 0, listener.log()
    listener.stop()


@pytest.fixture(scope="module")
def drill(kafka_bootstrap: str) -> Iterator[Drill]:
    from tests.support.kafka_local import unique_prefix

    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix(), partitions=3
    )
    from stormwatch_shared.kafka import ensure_topics

    ensure_topics(kafka)
    work = Path(tempfile.mkdtemp(prefix="stormwatch-prom-"))
    ports = {name: free_port() for name in SCRAPED}
    env = {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SENTIMENT_METRICS_PORT": str(ports["sentiment"]),
        "ALERTING_METRICS_PORT": str(ports["alerting"]),
        "SENTIMENT_METRICS_LAG_INTERVAL_S": "1",
        "ALERTING_METRICS_LAG_INTERVAL_S": "1",
        # Nothing listens on this port: every e-mail fails, as with a broken relay.
        "ALERTING_SMTP_PORT": str(free_port()),
        "ALERTING_SMTP_TIMEOUT_S": "2",
        "ALERTING_EMAIL_TO": "krisenstab@klinikum.example",
    }
    started = time.time()
    services = {name: Service(name, env, work) for name in SCRAPED}
    prom_port = free_port()
    (work / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(ports)))
    prom_log = (work / "prometheus.log").open("wb")
    prom = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=prom_log,
        stderr=subprocess.STDOUT,
    )
    handle = Drill(f"http://127.0.0.1:{prom_port}", ports, services, replay(DRILL), started)
    try:
        wait_for(lambda: http_get(f"{handle.prom}/-/ready")[0] == 200, 60, "Prometheus ready")
        for name, port in ports.items():
            wait_for(
                lambda port=port: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200,
                90,
                f"{name} ready",
            )
        lines = (DRILL / "mentions.jsonl").read_bytes().splitlines()
        cut = len(lines) // 10
        run_listener(env, write_part(work / "part1", lines[:cut]), work)
        wait_for(
            lambda: len(handle.query('stormwatch_alerts_total{event="raised"}')) >= 4,
            60,
            "Prometheus to scrape the zero alert counters of the first part",
        )
        first = handle.query('sum(stormwatch_alerts_total{event="raised"})')
        assert float(first[0]["value"][1]) == 0, "the first tenth of the drill must be calm"

        # increase() needs the counter's zero in Prometheus before the first dead letter:
        # a series first scraped at 1 shows no increase, and the rule could not fire.
        wait_for(
            lambda: bool(handle.query('stormwatch_dead_letters_total{service="sentiment"} == 0')),
            60,
            "Prometheus to scrape sentiment's zero dead-letter counter",
        )
        time.sleep(2)  # and a rule evaluation or two of it
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
        producer.send(kafka.topic(MENTIONS_RAW), b"{not json", key=b"hospital").get(30)
        producer.close()
        run_listener(env, write_part(work / "part2", lines[cut:]), work)

        events = handle.expected["counts"]["events"]

        def caught_up() -> bool:
            scored = handle.query("sum(stormwatch_mentions_scored_total)")
            detected = handle.query('sum(stormwatch_batch_messages_sum{service="alerting"})')
            alerts = handle.query("sum(stormwatch_alerts_total)")
            logged = handle.query(
                'sum(stormwatch_alerting_notifications_total{channel="log", outcome="sent"})'
            )
            return (
                bool(scored and detected and alerts and logged)
                and float(scored[0]["value"][1]) == events
                and float(detected[0]["value"][1]) == events
                and float(alerts[0]["value"][1]) > 0
                and float(logged[0]["value"][1]) == float(alerts[0]["value"][1])
            )

        wait_for(caught_up, 180, "the services to score, detect and notify the whole drill")
        wait_for(
            lambda: bool(handle.query("sum(stormwatch_consumer_lag_messages) == 0")),
            30,
            "the lag gauges to reach 0",
        )
        time.sleep(3)  # a few more scrapes and rule evaluations of the final state
        yield handle
    finally:
        for service in services.values():
            service.stop()
        prom.terminate()
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        prom_log.close()
        shutil.rmtree(work, ignore_errors=True)


def dashboard_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for t in panel["targets"]:
                out.append((path.name, f"{panel['title']} [{t['refId']}]", t["expr"]))
    return out


def substitute(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def rule_list() -> list[dict[str, Any]]:
    rules = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(group["rules"])
    return rules


def test_promtool_and_amtool_accept_the_shipped_configuration(tmp_path: Path) -> None:
    config = REPO / "deploy" / "prometheus" / "prometheus.yml"
    checks = [
        [PROMTOOL, "check", "config", str(config)],
        [PROMTOOL, "check", "rules", *map(str, RULES)],
        [PROMTOOL, "test", "rules", *map(str, (config.parent / "tests").glob("*.yml"))],
        [AMTOOL, "check-config", str(REPO / "deploy" / "alertmanager" / "alertmanager.yml")],
    ]
    generated = tmp_path / "prometheus.yml"
    generated.write_text(yaml.safe_dump(prometheus_config({"sentiment": 1, "alerting": 2})))
    checks.append([PROMTOOL, "check", "config", str(generated)])
    for cmd in checks:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
        assert "SUCCESS" in result.stdout + result.stderr


def test_services_report_health_and_readiness(drill: Drill) -> None:
    for port in drill.ports.values():
        assert http_get(f"http://127.0.0.1:{port}/healthz") == (200, b"ok\n")
        status, body = http_get(f"http://127.0.0.1:{port}/readyz")
        ready = json.loads(body)
        assert status == 200 and ready["ready"] is True, ready
        assert ready["checks"]["broker"] is True
    sentiment = json.loads(http_get(f"http://127.0.0.1:{drill.ports['sentiment']}/readyz")[1])
    assert sentiment["checks"]["model"] is True
    up = {r["metric"]["job"]: r["value"][1] for r in drill.query('up{job=~"stormwatch-.*"}')}
    assert up == {f"stormwatch-{n}": "1" for n in SCRAPED}


def test_every_dashboard_query_returns_data(drill: Drill) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    empty = [(board, title) for board, title, expr in queries if not drill.query(substitute(expr))]
    assert not empty, f"panels without data: {empty}"
    # The variable that selects the target lists every watched target.
    targets = {r["metric"]["target"] for r in drill.query("stormwatch_target_crisis_level")}
    watch_list = {t["id"] for t in json.loads((DRILL / "targets.json").read_bytes())}
    assert targets == watch_list


def test_figures_match_what_the_pipeline_did(drill: Drill) -> None:
    def value(expr: str) -> float:
        result = drill.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    expected = drill.expected
    raised = sum(1 for a in expected["alerts"])
    assert value('sum(stormwatch_alerts_total{event="raised"})') == raised
    assert value("sum(stormwatch_mentions_scored_total)") == expected["counts"]["events"]
    assert value("sum(stormwatch_dead_letters_total)") == 1
    sent = value('sum(stormwatch_alerting_notifications_total{channel="log", outcome="sent"})')
    failed = value(
        'sum(stormwatch_alerting_notifications_total{channel="email", outcome="failed"})'
    )
    assert sent == failed == value("sum(stormwatch_alerts_total)") > 0
    # Annotations in the crisis room: alert events over the drill's time range.
    board = json.loads((REPO / "deploy/grafana/dashboards/krisenraum.json").read_text())
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            series = drill.query_range(substitute(annotation["expr"]))
            shown = {s["metric"]["target"] for s in series}
            assert shown == {a["target"] for a in expected["alerts"]}, series


def test_every_rule_expression_evaluates_as_it_should(drill: Drill) -> None:
    rules = rule_list()
    names = {r["alert"] for r in rules}
    assert names == FIRING | set(QUIET_SIGNAL), "every rule needs an expectation here"
    for rule in rules:
        if rule["alert"] in FIRING:
            # Polled: the last scrape of the final state may still be on its way.
            wait_for(
                lambda expr=rule["expr"]: bool(drill.query(expr)),
                20,
                f"{rule['alert']} to fire in this drill",
            )
            continue
        result = drill.query(rule["expr"])
        assert not result, f"{rule['alert']} fired without cause: {result}"
        assert drill.query(QUIET_SIGNAL[rule["alert"]]), f"no series for {rule['alert']}"
    loaded = drill.api("/api/v1/rules")["groups"]
    health = {r["name"]: r["health"] for g in loaded for r in g["rules"]}
    assert health == dict.fromkeys(names, "ok")
    wait_for(
        lambda: {a["labels"]["alertname"] for a in drill.api("/api/v1/alerts")["alerts"]} >= FIRING,
        30,
        "Prometheus to evaluate the firing rules",
    )


def test_no_label_can_carry_personal_data(drill: Drill) -> None:
    labels = drill.api("/api/v1/labels")
    bad = [n for n in labels if FORBIDDEN_LABEL_WORDS & set(n.lower().split("_"))]
    assert not bad, f"label names that could carry personal data: {bad}"
    personal: set[str] = set()
    for line in (DRILL / "mentions.jsonl").read_bytes().splitlines():
        m = orjson.loads(line)
        personal |= {m["id"], m["author"]["id"], m["author"]["handle"], m["text"]}
        personal.add(m["author"]["handle"].lstrip("@"))
    for name in labels:
        values = set(drill.api(f"/api/v1/label/{urllib.parse.quote(name)}/values"))
        assert not values & personal, f"label {name} carries personal data"
        assert all(len(v) <= 200 for v in values), name


def test_service_down_rule_sees_a_stopped_service(drill: Drill) -> None:
    drill.services["alerting"].stop()
    expr = next(r["expr"] for r in rule_list() if r["alert"] == "StormwatchServiceDown")
    wait_for(lambda: bool(drill.query(expr)), 30, "up == 0 for the stopped service")
    down = {r["metric"]["job"] for r in drill.query(expr)}
    assert down == {"stormwatch-alerting"}
    assert re.fullmatch(r"up\{.*\} == 0", expr)
