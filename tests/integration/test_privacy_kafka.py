"""``forget`` against a real broker: the compacted detector changelog is rewritten, the
append-only topics are reported honestly, a running alerting service stops the erasure; and
topic retention follows the settings, also on topics that already exist."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from stormwatch_alerting.adapters import observation
from stormwatch_alerting.domain.detector import Detector, preset
from stormwatch_alerting.state import DetectorStateStore
from stormwatch_shared.codec import encode
from stormwatch_shared.events import Author, Mention, MentionScored
from stormwatch_shared.kafka import ensure_topics
from stormwatch_shared.settings import KafkaSettings
from stormwatch_shared.topics import DAY_MS, DETECTOR_CHANGELOG, MENTIONS_RAW, MENTIONS_SCORED

from stormwatch_cli.forget import ForgetError, Request, forget
from tests.support.kafka_local import read_all

pytestmark = [pytest.mark.privacy, pytest.mark.kafka]

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _scored(n: int, target: str, author: tuple[str, str], negative: bool) -> MentionScored:
    mention = Mention(
        id=f"x:{target}-{n}",
        source="x",
        created_at=T0 + timedelta(minutes=5 * n),
        text=f"Beitrag {n} über {target}",
        author=Author(id=author[0], handle=author[1], followers=1000 + n),
        url=f"https://x.com/{author[1].lstrip('@')}/status/{n}",
    )
    return MentionScored(
        occurred_at=mention.created_at,
        target_id=target,
        target_ids=(target,),
        target_kind="ambassador" if target == "paula" else "organisation",
        mention=mention,
        label="negative" if negative else "neutral",
        scores={"negative": 0.9 if negative else 0.1, "neutral": 0.1, "positive": 0.0},
        language="de",
        model_id="test",
        received_event_id=f"r{n}",
    )


def _seed(kafka: KafkaSettings) -> tuple[list[MentionScored], Detector]:
    """Scored mentions in Kafka and the detector states they produce in the changelog."""
    events = []
    for n in range(60):
        author = ("u-erika", "@Erika_M") if n % 10 == 3 else (f"u{n % 7}", f"@crowd{n % 7}")
        for target in ("paula", "hospital"):
            events.append(_scored(n, target, author, negative=n > 40))
    detector = Detector(preset("normal"))
    store = DetectorStateStore(detector, kafka.bootstrap_servers, kafka.topic(DETECTOR_CHANGELOG))
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    for e in events:
        producer.send(kafka.topic(MENTIONS_SCORED), key=e.target_id.encode(), value=encode(e))
        detector.observe(observation(e))
    for tid in ("paula", "hospital"):
        producer.send(kafka.topic(DETECTOR_CHANGELOG), key=tid.encode(), value=store.encode(tid))
    producer.flush()
    producer.close()
    return events, detector


def _restored(kafka: KafkaSettings) -> Detector:
    detector = Detector(preset("normal"))
    store = DetectorStateStore(detector, kafka.bootstrap_servers, kafka.topic(DETECTOR_CHANGELOG))
    asyncio.run(store.restore(range(kafka.partitions)))
    return detector


def test_forget_author_rewrites_the_detector_changelog(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    events, detector = _seed(kafka_settings)
    erika = {e.mention.id for e in events if e.mention.author.id == "u-erika"}
    assert "u-erika" in orjson.dumps(detector.snapshot("paula")).decode()
    out = forget(
        Request("author", "erika_m"),  # by handle: the id comes from the scored topic
        kafka=kafka_settings,
        state_db=tmp_path / "state.sqlite3",
        now=T0,
        alerting_group="no-such-group",
    )
    assert out.counts["changelog_states"] == 2 and out.counts["changelog_entries"] >= 2
    assert out.counts[f"kafka_{MENTIONS_SCORED}"] == len(erika)
    assert sum(len(p) for p in out.remaining.values()) >= 1  # reported, not pretended away
    restored = _restored(kafka_settings)
    for tid in ("paula", "hospital"):
        state = orjson.dumps(restored.snapshot(tid)).decode()
        assert "u-erika" not in state and not [m for m in erika if f'"{m}"' in state]
        assert '"u3"' in state or '"u1"' in state  # the crowd is still known
        assert restored.status(tid) == detector.status(tid)


def test_forget_ambassador_writes_a_tombstone(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    _seed(kafka_settings)
    out = forget(
        Request("ambassador", "paula"),
        kafka=kafka_settings,
        state_db=tmp_path / "state.sqlite3",
        now=T0,
        alerting_group="no-such-group",
    )
    assert out.counts["changelog_tombstones"] == 1
    latest: dict[bytes | None, bytes | None] = {}
    for key, value in read_all(
        kafka_settings.bootstrap_servers, kafka_settings.topic(DETECTOR_CHANGELOG)
    ):
        latest[key] = value
    assert latest[b"paula"] is None and latest[b"hospital"] is not None


def test_forget_refuses_while_alerting_consumes(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    _seed(kafka_settings)
    group = f"{kafka_settings.topic_prefix}alerting"
    consumer = KafkaConsumer(
        kafka_settings.topic(MENTIONS_SCORED),
        bootstrap_servers=kafka_settings.bootstrap_servers,
        group_id=group,
    )
    try:
        for _ in range(40):
            if consumer.poll(timeout_ms=250) or consumer.assignment():
                break
        with pytest.raises(ForgetError, match="alerting is running"):
            forget(
                Request("author", "u-erika"),
                kafka=kafka_settings,
                state_db=tmp_path / "state.sqlite3",
                now=T0,
                alerting_group=group,
            )
    finally:
        consumer.close()
    assert not (tmp_path / "state.sqlite3").exists()  # nothing was touched


def _configs(kafka: KafkaSettings, base: str, *keys: str) -> dict[str, str]:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    try:
        name = kafka.topic(base)
        got = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, dict.fromkeys(keys))],
            config_filter="all",
        )
        return {k: str(v["value"]) for k, v in got["topic"][name].items()}
    finally:
        admin.close()


def test_retention_follows_the_settings_on_existing_topics(
    kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _configs(kafka_settings, MENTIONS_RAW, "retention.ms") == {
        "retention.ms": str(30 * DAY_MS)
    }
    changelog = _configs(kafka_settings, DETECTOR_CHANGELOG, "max.compaction.lag.ms")
    assert changelog == {"max.compaction.lag.ms": str(DAY_MS)}
    monkeypatch.setenv("STORMWATCH_RETENTION_MENTIONS_DAYS", "7")
    altered: list[str] = []
    assert ensure_topics(kafka_settings, altered=altered) == []  # nothing new created
    assert {kafka_settings.topic(MENTIONS_RAW), kafka_settings.topic(MENTIONS_SCORED)} <= set(
        altered
    )
    for base in (MENTIONS_RAW, MENTIONS_SCORED):
        assert _configs(kafka_settings, base, "retention.ms") == {"retention.ms": str(7 * DAY_MS)}
    again: list[str] = []
    ensure_topics(kafka_settings, altered=again)
    assert again == []  # aligned topics are left alone


def test_forget_mention_erases_that_post_and_keeps_its_author(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    events, detector = _seed(kafka_settings)
    before = orjson.dumps(detector.snapshot("paula")).decode()
    in_state = [
        e.mention.id for e in events if e.target_id == "paula" and f'"{e.mention.id}"' in before
    ]
    assert len(in_state) >= 2, "the fixture must hold several post ids in the state"
    gone, kept = in_state[0], in_state[1:]
    out = forget(
        Request("mention", gone),
        kafka=kafka_settings,
        state_db=tmp_path / "state.sqlite3",
        now=T0,
        alerting_group="no-such-group",
    )
    assert out.counts["changelog_states"] == 1 and out.counts[f"kafka_{MENTIONS_SCORED}"] == 1
    state = orjson.dumps(_restored(kafka_settings).snapshot("paula")).decode()
    assert f'"{gone}"' not in state
    assert all(f'"{m}"' in state for m in kept)
    assert '"u-erika"' in state and '"u3"' in state  # authors stay
