"""Scale-out and graceful shutdown on the real broker: two instances of each consumer in one
group split six partitions and raise exactly the alerts one process raises; SIGTERM mid-stream
stops a service within 15 s with what it finished committed, and nothing else."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from stormwatch_alerting.app import decode_alert
from stormwatch_shared.kafka import ensure_topics
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import ALERTS, DETECTOR_CHANGELOG, MENTIONS_RAW, MENTIONS_SCORED

from stormwatch_cli.replay import replay
from stormwatch_cli.report import AlertReport
from tests.conftest import DRILL
from tests.support.kafka_local import group_lag, read_all, unique_prefix
from tests.support.processes import Service, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

SENTIMENT, ALERTING = "stormwatch-sentiment", "stormwatch-alerting"


@pytest.fixture
def kafka6(kafka_bootstrap: str) -> KafkaSettings:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix(), partitions=6
    )
    ensure_topics(settings)
    return settings


def _env(kafka: KafkaSettings, **extra: str) -> dict[str, str]:
    return {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "LISTENER_REPLAY_DIR": str(DRILL),
        "SENTIMENT_METRICS_PORT": "0",
        "ALERTING_METRICS_PORT": "0",
        "LISTENER_METRICS_PORT": "0",
        **extra,
    }


def _assignments(bootstrap: str, group: str, topic: str) -> list[set[int]]:
    """Partitions of ``topic`` held by each member of ``group``."""
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        desc = admin.describe_groups([group]).get(group) or {}
    except KafkaError:
        return []  # coordinator still electing: the caller polls again
    finally:
        admin.close()
    out = []
    for member in desc.get("members") or []:
        # Group ids are not prefixed: members reading other tests' topics are not ours.
        if topic not in ((member.get("member_metadata") or {}).get("topics") or []):
            continue
        assignment = member.get("member_assignment") or {}
        held: set[int] = set()
        for entry in assignment.get("assigned_partitions") or []:
            if entry.get("topic") == topic:
                held |= set(entry.get("partitions") or [])
        out.append(held)
    return out


def _expected() -> list[dict[str, object]]:
    report = AlertReport()
    report._alerts = {a["alert_id"]: a for a in replay(DRILL)["alerts"]}
    return report.comparable()


def _alerts(kafka: KafkaSettings) -> list[dict[str, object]]:
    report = AlertReport()
    for _k, v in read_all(kafka.bootstrap_servers, kafka.topic(ALERTS)):
        report.add(decode_alert(v))
    return report.comparable()


def _drain(kafka: KafkaSettings, timeout: float = 120) -> None:
    b = kafka.bootstrap_servers
    wait_for(
        lambda: (
            group_lag(b, SENTIMENT, kafka.topic(MENTIONS_RAW)) == 0
            and group_lag(b, ALERTING, kafka.topic(MENTIONS_SCORED)) == 0
        ),
        timeout,
        "the pipeline to drain",
    )


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for s in started:
        s.stop()


def test_two_instances_per_group_raise_the_same_alerts_as_one(
    kafka6: KafkaSettings, tmp_path: Path, services: list[Service]
) -> None:
    expected = _expected()
    assert expected, "the drill must raise alerts for this comparison to mean anything"
    env = _env(kafka6)
    b = kafka6.bootstrap_servers
    raw, scored = kafka6.topic(MENTIONS_RAW), kafka6.topic(MENTIONS_SCORED)
    for n in (1, 2):
        for name in ("alerting", "sentiment"):
            services.append(Service(name, env, tmp_path / f"{name}-{n}"))

    def split(group: str, topic: str) -> bool:
        held = _assignments(b, group, topic)
        return len(held) == 2 and all(held) and set().union(*held) == set(range(6))

    wait_for(lambda: split(SENTIMENT, raw) and split(ALERTING, scored), 60, "two members each")
    listener = Service("listener", env, tmp_path / "listener")
    services.append(listener)
    assert listener.proc.wait(120) == 0, listener.log()
    _drain(kafka6)
    # Both instances of each group still share the work at the end (no one fell out).
    assert split(SENTIMENT, raw) and split(ALERTING, scored)
    raw_ids = {orjson.loads(v)["event_id"] for _k, v in read_all(b, raw)}
    scored_ids = [orjson.loads(v)["received_event_id"] for _k, v in read_all(b, scored)]
    assert len(scored_ids) == len(raw_ids) and set(scored_ids) == raw_ids
    assert _alerts(kafka6) == expected
    for s in services:
        assert "Traceback" not in s.log(), s.log()


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic}


def _raw_ids_below(bootstrap: str, topic: str, committed: dict[int, int]) -> set[str]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        out: set[str] = set()
        for p, upto in committed.items():
            if upto <= 0:
                continue
            tp = TopicPartition(topic, p)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            while consumer.position(tp) < upto:
                for records in consumer.poll(timeout_ms=1000).values():
                    out |= {orjson.loads(r.value)["event_id"] for r in records if r.offset < upto}
        return out
    finally:
        consumer.close()


def test_sigterm_mid_stream_stops_within_15_s_with_finished_work_committed(
    kafka6: KafkaSettings, tmp_path: Path, services: list[Service]
) -> None:
    b = kafka6.bootstrap_servers
    raw, scored = kafka6.topic(MENTIONS_RAW), kafka6.topic(MENTIONS_SCORED)
    env = _env(kafka6, LISTENER_REPLAY_SPEED=str(14 * 86400 / 20))
    running = {n: Service(n, env, tmp_path / "first") for n in ("alerting", "sentiment")}
    services.extend(running.values())
    wait_for(lambda: len(_assignments(b, ALERTING, scored)) == 1, 60, "alerting to join")
    wait_for(lambda: len(_assignments(b, SENTIMENT, raw)) == 1, 60, "sentiment to join")
    listener = Service("listener", env, tmp_path / "listener")
    services.append(listener)
    wait_for(lambda: len(read_all(b, scored, 5)) > 100, 60, "the stream to be under way")
    stopped_in = {}
    for name, service in running.items():
        started = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        code = service.proc.wait(20)
        stopped_in[name] = time.monotonic() - started
        assert code in (0, -signal.SIGTERM), service.log()
        assert "Traceback" not in service.log(), service.log()
    assert listener.proc.poll() is None, "the stream ended before the stop; nothing was in flight"
    assert all(s <= 15 for s in stopped_in.values()), stopped_in

    # Sentiment: exactly the mentions below its committed offsets were scored, so nothing
    # finished is redone and nothing committed is missing.
    committed = _committed(b, SENTIMENT, raw)
    scored_ids = {orjson.loads(v)["received_event_id"] for _k, v in read_all(b, scored)}
    assert scored_ids and _raw_ids_below(b, raw, committed) == scored_ids
    # Alerting: the detector state written for each partition includes exactly the mentions
    # up to the committed offset.
    done = _committed(b, ALERTING, scored)
    last_in_state: dict[int, int] = {}
    for _k, v in read_all(b, kafka6.topic(DETECTOR_CHANGELOG)):
        if v is None:
            continue
        entry = orjson.loads(v)
        p = int(entry["partition"])
        last_in_state[p] = max(last_in_state.get(p, -1), int(entry["offset"]))
    assert last_in_state
    assert {p: o + 1 for p, o in last_in_state.items()} == {p: o for p, o in done.items() if o > 0}

    # Started again, the pipeline finishes the drill with the alerts of one clean run.
    for name in ("alerting", "sentiment"):
        services.append(Service(name, env, tmp_path / "second"))
    assert listener.proc.wait(120) == 0, listener.log()
    _drain(kafka6)
    assert _alerts(kafka6) == _expected()
