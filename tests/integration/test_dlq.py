"""``stormwatch dlq inspect|replay`` on the real broker: an operator finds why messages were
refused, fixes them, and the fixed ones flow through the pipeline with their original key."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from stormwatch_shared.codec import encode
from stormwatch_shared.kafka import dead_letter
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import MENTIONS_RAW, MENTIONS_SCORED, dlq

from stormwatch_cli.main import main
from tests.conftest import DRILL
from tests.support.kafka_local import group_lag, read_all
from tests.support.processes import Service, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.faults]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


@pytest.fixture
def cli_env(kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch) -> KafkaSettings:
    monkeypatch.setenv("STORMWATCH_KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("STORMWATCH_KAFKA_TOPIC_PREFIX", kafka_settings.topic_prefix)
    return kafka_settings


def _valid_received() -> dict[str, object]:
    from stormwatch_listener.domain.matching import received_events
    from stormwatch_shared.events import Mention
    from stormwatch_shared.targets import TargetMatcher, load_targets

    matcher = TargetMatcher(load_targets(DRILL / "targets.json"))
    for line in (DRILL / "mentions.jsonl").read_bytes().splitlines():
        events = received_events(Mention.model_validate_json(line), matcher)
        if len(events) == 1:
            return orjson.loads(encode(events[0]))
    raise AssertionError("the drill has no single-target mention")


def test_inspect_then_fix_and_replay_flows_through_sentiment(
    cli_env: KafkaSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kafka = cli_env
    raw = kafka.topic(MENTIONS_RAW)
    good = _valid_received()
    broken = {**good, "target_ids": []}  # a producer bug: schema violation
    key = str(good["target_id"]).encode()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    producer.send(raw, key=b"bad-json", value=b"{this is not json")
    producer.send(raw, key=key, value=orjson.dumps(broken))
    producer.flush()
    env = {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SENTIMENT_METRICS_PORT": "0",
    }
    sentiment = Service("sentiment", env, tmp_path)
    try:
        wait_for(
            lambda: len(read_all(kafka.bootstrap_servers, dlq(raw), 5)) == 2,
            60,
            "two dead letters",
        )

        code, out, _ = _cli(capsys, "dlq", "inspect", MENTIONS_RAW)
        assert code == 0
        assert "2 Dead Letter(s)" in out
        assert "invalid JSON" in out and "schema violation" in out
        assert "{this is not json" in out

        code, out, _ = _cli(capsys, "dlq", "inspect", f"{MENTIONS_RAW}.dlq", "--json")
        letters = json.loads(out)
        by_key = {x["key"]: x for x in letters}
        assert set(by_key) == {"bad-json", key.decode()}
        fixable = by_key[key.decode()]
        assert fixable["source_topic"] == raw
        assert fixable["service"] == "sentiment"
        assert orjson.loads(fixable["payload"]) == broken
        assert fixable["partition"] in range(kafka.partitions) and fixable["offset"] in (0, 1)

        # Unchanged, both would be refused again: nothing is sent, the exit says so.
        before = len(read_all(kafka.bootstrap_servers, raw))
        code, out, _ = _cli(capsys, "dlq", "replay", MENTIONS_RAW, "--json")
        assert code == 3
        assert {e["action"] for e in json.loads(out)} == {"skip"}
        assert len(read_all(kafka.bootstrap_servers, raw)) == before

        # The operator fixes the payload in the inspect output and replays just that one.
        fixable["payload"] = {**broken, "target_ids": [good["target_id"]]}
        fix_file = tmp_path / "letters.json"
        fix_file.write_text(json.dumps([fixable]), encoding="utf-8")
        code, out, _ = _cli(capsys, "dlq", "replay", MENTIONS_RAW, "--fix-file", str(fix_file))
        assert code == 0, out
        assert "replayed" in out
        replayed = read_all(kafka.bootstrap_servers, raw)
        assert len(replayed) == before + 1
        assert replayed_record_key(replayed, str(good["event_id"])) == key

        wait_for(
            lambda: group_lag(kafka.bootstrap_servers, "stormwatch-sentiment", raw) == 0,
            60,
            "sentiment to take the replayed mention",
        )
        scored = read_all(kafka.bootstrap_servers, kafka.topic(MENTIONS_SCORED))
        assert [orjson.loads(v)["received_event_id"] for _k, v in scored] == [good["event_id"]]
        assert len(read_all(kafka.bootstrap_servers, dlq(raw))) == 2, "no new dead letter"
    finally:
        sentiment.stop()


def replayed_record_key(records: list[tuple[bytes | None, bytes]], event_id: str) -> bytes | None:
    for k, v in records:
        try:
            if orjson.loads(v).get("event_id") == event_id:
                return k
        except orjson.JSONDecodeError:
            continue
    raise AssertionError(f"{event_id} not in the topic")


def test_replay_by_offset_sends_the_original_payload_and_key_dry_run_sends_nothing(
    cli_env: KafkaSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka = cli_env
    raw = kafka.topic(MENTIONS_RAW)
    good = _valid_received()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    # Letters as a consumer writes them: e.g. refused while a schema upgrade was half done.
    for n, target in enumerate(("paula", "jonas", "mia")):
        payload = orjson.dumps({**good, "event_id": f"e{n}", "target_id": target})
        letter = dead_letter(
            service="sentiment",
            source_topic=raw,
            reason="unsupported schema_version 1 (this service reads 2)",
            payload=payload,
            partition=n,
            offset=40 + n,
            key=target.encode(),
        )
        producer.send(dlq(raw), key=target.encode(), value=encode(letter))
    producer.flush()

    code, out, _ = _cli(capsys, "dlq", "inspect", MENTIONS_RAW, "--offset", "1")
    assert code == 0
    assert "jonas" in out and "paula" not in out and "@41" in out

    code, out, err = _cli(capsys, "dlq", "replay", MENTIONS_RAW, "--offset", "1", "--dry-run")
    assert code == 0
    assert "1 würden gesendet" in err
    assert read_all(kafka.bootstrap_servers, raw, 5) == []

    code, out, _ = _cli(
        capsys, "dlq", "replay", MENTIONS_RAW, "--offset", "1", "--offset", "2", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert [(e["dlq_offset"], e["action"], e["key"]) for e in report] == [
        (1, "replayed", "jonas"),
        (2, "replayed", "mia"),
    ]
    sent = {k: orjson.loads(v) for k, v in read_all(kafka.bootstrap_servers, raw)}
    assert set(sent) == {b"jonas", b"mia"}
    assert sent[b"jonas"]["event_id"] == "e1"
    assert sent[b"mia"]["target_id"] == "mia"

    code, _, err = _cli(capsys, "dlq", "replay", MENTIONS_RAW, "--offset", "9")
    assert code == 1 and "no dead letter at offset(s) [9]" in err
