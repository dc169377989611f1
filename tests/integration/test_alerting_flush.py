"""When alerting makes its work durable, on the real broker: under continuous input every
``ALERTING_CHANGELOG_FLUSH_S``, but as soon as the input pauses, whatever that interval.

With an interval of two minutes, only the pause can explain a commit within seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from stormwatch_shared.codec import encode
from stormwatch_shared.events import Mention, MentionScored
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import DETECTOR_CHANGELOG, MENTIONS_SCORED

from tests.conftest import DRILL
from tests.support.kafka_local import group_lag, read_all
from tests.support.processes import Service, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.kafka]


def _publish(kafka: KafkaSettings, names: range, start: datetime) -> None:
    template = Mention.model_validate_json((DRILL / "mentions.jsonl").read_bytes().splitlines()[0])
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    for i in names:
        at = start + timedelta(seconds=20 * i)
        event = MentionScored(
            event_id=f"m{i}|scored",
            occurred_at=at,
            target_id="hospital",
            target_ids=("hospital",),
            mention=template.model_copy(update={"id": f"x:{i}", "created_at": at}),
            label="neutral",
            scores={"negative": 0.1, "neutral": 0.8, "positive": 0.1},
            language="de",
            model_id="test",
            received_event_id=f"m{i}",
        )
        producer.send(kafka.topic(MENTIONS_SCORED), key=b"hospital", value=encode(event))
    producer.flush()
    producer.close()


def _state_offsets(kafka: KafkaSettings) -> list[int]:
    return [
        int(orjson.loads(v)["offset"])
        for _k, v in read_all(kafka.bootstrap_servers, kafka.topic(DETECTOR_CHANGELOG))
        if v is not None
    ]


def test_a_pause_in_the_input_makes_states_and_offsets_durable_at_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    b, scored = kafka_settings.bootstrap_servers, kafka_settings.topic(MENTIONS_SCORED)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    _publish(kafka_settings, range(0, 150), start)
    env = {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": b,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "ALERTING_CHANGELOG_FLUSH_S": "120",
        "ALERTING_STATE_DB": str(tmp_path / "state.sqlite"),
    }
    alerting = Service("alerting", env, tmp_path)
    try:
        lag = lambda: group_lag(b, "stormwatch-alerting", scored)  # noqa: E731
        wait_for(lambda: lag() == 0, 60, "the first mentions committed")
        first = _state_offsets(kafka_settings)
        assert first, "no detector state was written with the commit"
        # The flush clock has just restarted: only the pause after these can commit them
        # before two minutes are up.
        _publish(kafka_settings, range(150, 200), start)
        wait_for(lambda: lag() == 0, 20, "the later mentions committed after the pause")
        states = _state_offsets(kafka_settings)
        assert len(states) > len(first) and max(states) > max(first)
        assert alerting.proc.poll() is None
    finally:
        alerting.stop()
    assert "Traceback" not in alerting.log()
