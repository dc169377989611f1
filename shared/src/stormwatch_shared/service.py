"""Pieces every FastStream service shares: broker factory, raw decoding, logging."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from faststream.kafka import KafkaBroker

from stormwatch_shared.kafka import PRODUCER_DEFAULTS
from stormwatch_shared.settings import KafkaSettings


async def raw_body(msg: Any) -> Any:
    """Hand handlers the undecoded bytes, so a malformed message reaches our dead-letter code
    instead of failing inside the framework where we could not say why."""
    return msg.body


def make_broker(settings: KafkaSettings, client_id: str, **extra: Any) -> KafkaBroker:
    logger = logging.getLogger(f"stormwatch.{client_id}.broker")
    return KafkaBroker(
        settings.bootstrap_servers.split(","),
        client_id=client_id,
        logger=logger,
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
        **{**PRODUCER_DEFAULTS, **extra},
    )


def configure_logging(service: str) -> logging.Logger:
    level = os.environ.get("STORMWATCH_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        stream=sys.stderr,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(f"stormwatch.{service}")
