"""Fixtures start what the tests need: the real Kafka broker (once per session, unless
STORMWATCH_TEST_KAFKA names one) and a real SMTP sink. So any marker runs alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stormwatch_shared.kafka import ensure_topics
from stormwatch_shared.settings import KafkaSettings

from tests.support.kafka_local import local_kafka, unique_prefix
from tests.support.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DRILL = REPO / "examples" / "drill"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with local_kafka() as bootstrap:
        yield bootstrap


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Fresh, isolated topics for each test (a unique prefix), created up front."""
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix(), partitions=3
    )
    ensure_topics(settings)
    return settings


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()
