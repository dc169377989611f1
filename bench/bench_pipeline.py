"""Pipeline benchmark on the real broker: throughput, the relay ceiling, alert latency, memory.

What is measured, all on this machine, the services as separate processes (as an operator
runs them):

- ``pipeline_mentions_per_s``: a burst of ``N_TIMED`` MentionReceived events (a synthetic
  drill-format scenario of a few hundred targets, read, matched and encoded with the
  listener's own functions before timing) is published as fast as the producer goes into
  ``mentions.raw.v1``; sentiment (offline default model) scores them into
  ``mentions.scored.v1``; alerting runs the detector. Timed from the first publish to the
  moment the alerting group has committed every scored mention. Because the whole burst is
  in Kafka long before the services catch up, this is also the backpressure check: the
  consumer lag peaks (recorded) and must drain, and each service's peak RSS is recorded.
- ``relay_mentions_per_s``: the same burst, the same topics, but the two consumers are
  pass-through FastStream apps with the services' batch settings that do no work (copy the
  bytes, commit). The ceiling of Kafka + client + framework on this machine; measured in the
  same run so both see the same load.
- Both are measured ``PAIRS`` times, relay and pipeline alternated; the keys above are the
  medians, ``pipeline_relay_ratio`` the median of the pairs' own ratios, and the ``*_pairs``
  and ``pipeline_relay_ratios`` lists give every pair. The CPU figures are medians as well,
  the peak RSS the highest of all pairs; the backpressure and latency figures come from the
  first pair.
- ``alert_latency_p99_s``: after the burst has drained, ``STORMS`` targets, one after the
  other, get a storm of negative mentions from new authors in one five-minute bucket with
  timestamps a few minutes old, then a mention that closes the bucket; the time from
  publishing the mention that made the detector raise the alert to the alert email's arrival
  at a local SMTP server is taken (see ``alert_latencies``).
- ``listener_replay_mentions_per_s`` and ``peak_rss_mb_listener``: the real listener process
  replaying the same scenario file into its own topics (no consumers).
- ``cpu_us_per_mention_<process>`` and ``relay_cpu_us_per_mention_<process>``: CPU time (user
  + system) each process used from the first publish of the burst to its drain, divided by
  the burst's mentions: sentiment, alerting (or the two relays), the broker, and the
  producer (this process). On two cores the pipeline cannot go faster than 2 s divided by
  their sum, so these say where a faster pipeline has to come from.

Run alone: ``.venv/bin/python bench/bench_pipeline.py`` (needs Java for the local broker, or
``STORMWATCH_BENCH_KAFKA=host:port``); ``bench/run.py`` runs it with the other benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import email
import email.policy
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
SHARED_SENTIMENT = ROOT.parent / "shared" / "data" / "sentiment"
KAFKA_SH = ROOT / "deploy" / "kafka-local" / "kafka.sh"

N_TIMED = int(os.environ.get("BENCH_PIPELINE_MENTIONS", "100000"))
N_WARMUP = 2_000
N_TARGETS = 300
SPAN_S = 2 * 86400
"""Two days: the detector needs a day of history per target before it may alert."""
BUCKET_S = 300
STORMS = 20
STORM_SIZE = 40
PARTITIONS = 6
PAIRS = max(1, int(os.environ.get("BENCH_PIPELINE_PAIRS", "3")))
"""Relay and pipeline phases are run this many times each, alternated; the figures are the
medians. One phase lasts seconds, and this host's speed moves by 20-30 % from one minute to
the next: a single pair's ratio went from 0.42 to 0.57 on the same code (2026-12-03)."""

_FALLBACK_TEXTS = [
    "Danke an das ganze Team, ich habe mich gut aufgehoben gefühlt.",
    "Stundenlang in der Notaufnahme gewartet, niemand hat sich gekümmert.",
    "Heute Tag der offenen Tür, kommt vorbei!",
    "Great care, thank you so much to the nurses on ward 3.",
    "The food was cold and the room was dirty. Never again.",
    "Bericht im Lokalradio heute um 18 Uhr.",
    "Die Hygiene auf Station ist katastrophal, ein Skandal.",
    "Neue Parkplätze am Haupteingang ab Montag.",
]

STORM_TEXTS = [
    "Skandal! Die Hygiene auf Station ist katastrophal, nie wieder!",
    "Was für eine Schande, Patienten stundenlang ohne Hilfe liegen lassen.",
    "Unverschämt und respektlos, so behandelt man keine Menschen. Wütend!",
    "Disgusting, they left my mother waiting for hours. Shame on you!",
    "Katastrophe in der Notaufnahme, niemand kümmert sich, furchtbar.",
]


def _texts() -> list[tuple[str, str]]:
    """Real tweets with their language (the sentiment dev sets beside the repo) for realistic
    lengths and model work; a small built-in set where that folder is missing."""
    out: list[tuple[str, str]] = []
    for name in ("sb10k_de_dev", "potts_de_dev", "umsab_de_val", "tweeteval_en_val"):
        path = SHARED_SENTIMENT / f"{name}.tsv"
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh, delimiter="\t"))[1:]
            out.extend((r[1], name.split("_")[1]) for r in rows if len(r) > 1 and r[1].strip())
    return out or [(t, "de") for t in _FALLBACK_TEXTS]


def _handle(i: int) -> str:
    return f"@bench_t{i:03d}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_scenario(
    directory: Path, events: int, end: float, targets: int = N_TARGETS, seed: int = 7
) -> None:
    """A drill-format scenario (``targets.json`` + ``mentions.jsonl``) with at least
    ``events`` mention-target pairs over ``SPAN_S`` seconds before ``end``."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "targets.json").write_bytes(
        orjson.dumps(
            [
                {
                    "id": f"t{i:03d}",
                    "kind": "organisation" if i % 25 == 0 else "ambassador",
                    "name": f"Bench Target {i}",
                    "keywords": [],
                    "handles": [_handle(i)],
                }
                for i in range(targets)
            ]
        )
    )
    texts = _texts()
    # Skewed popularity: a few targets get much more attention, like a hospital vs. its staff.
    weights = [1.0 / (1 + i) ** 0.6 for i in range(targets)]
    n = int(events / 1.03) + 1
    times = sorted(rng.uniform(end - SPAN_S, end - 1) for _ in range(n))
    with (directory / "mentions.jsonl").open("wb") as fh:
        for k, at in enumerate(times):
            chosen = rng.choices(range(targets), weights)
            if rng.random() < 0.05:
                chosen.append(rng.randrange(targets))
            handles = " ".join(_handle(i) for i in dict.fromkeys(chosen))
            source = rng.choice(("x", "mastodon", "bluesky"))
            text, lang = rng.choice(texts)
            fh.write(
                orjson.dumps(
                    {
                        "id": f"{source}:{k:09d}",
                        "source": source,
                        "created_at": _iso(at),
                        "text": f"{handles} {text}",
                        # Most sources say the language; some posts come without.
                        "lang": lang if rng.random() < 0.85 else None,
                        "author": {
                            "id": f"u{rng.randrange(40_000)}",
                            "handle": f"@user{k % 40_000}",
                            "followers": rng.randrange(5, 3000),
                        },
                        "url": f"https://example.invalid/{k}",
                        "in_reply_to": None,
                        "metrics": {"likes": rng.randrange(10), "reposts": 0, "replies": 0},
                    }
                )
                + b"\n"
            )


Payload = tuple[bytes, bytes, int]


def _encode_mentions(directory: Path, mentions: list[Any] | None = None) -> list[Payload]:
    """What the listener would publish for a scenario, with its own functions."""
    from stormwatch_listener.domain.matching import received_events
    from stormwatch_shared.codec import encode
    from stormwatch_shared.scenario import ReadProblems, iter_mentions
    from stormwatch_shared.targets import TargetMatcher, load_targets

    matcher = TargetMatcher(load_targets(directory / "targets.json"))
    source = (
        mentions
        if mentions is not None
        else iter_mentions(directory / "mentions.jsonl", ReadProblems())
    )
    out: list[Payload] = []
    for mention in source:
        for event in received_events(mention, matcher):
            out.append(
                (
                    event.target_id.encode(),
                    encode(event),
                    int(event.occurred_at.timestamp() * 1000),
                )
            )
    return out


def _mention(mid: str, at: float, text: str, author: str, followers: int, reply: str | None) -> Any:
    from stormwatch_shared.events import Mention

    return Mention.model_validate(
        {
            "id": mid,
            "source": "x",
            "created_at": _iso(at),
            "text": text,
            "lang": "de",
            "author": {"id": author, "handle": f"@{author}", "followers": followers},
            "url": f"https://example.invalid/{mid}",
            "in_reply_to": reply,
            "metrics": {"likes": 0, "reposts": 0, "replies": 0},
        }
    )


Storm = list[tuple[int, Payload]]


def storm_payloads(directory: Path, bucket: int) -> list[tuple[str, Storm]]:
    """Per chosen target, a storm inside ``bucket`` (one negative post every five seconds
    from new authors, replies to one post) and then the mention that closes the bucket;
    each with its event time in whole seconds, unique within the target."""
    rng = random.Random(11)
    chosen = list(range(5, N_TARGETS, N_TARGETS // STORMS))[:STORMS]
    start = bucket * BUCKET_S
    out: list[tuple[str, Storm]] = []
    for i in chosen:
        mentions = [
            _mention(
                f"x:storm{i:03d}{j:03d}",
                start + 5 + 5 * j,
                f"{_handle(i)} {rng.choice(STORM_TEXTS)}",
                f"stormer{i}_{j}",
                rng.randrange(500, 4000),
                f"x:post{i:03d}",
            )
            for j in range(STORM_SIZE)
        ]
        mentions.append(
            _mention(
                f"x:close{i:03d}",
                start + BUCKET_S + 61,
                f"{_handle(i)} Heute Tag der offenen Tür.",
                f"closer{i}",
                10,
                None,
            )
        )
        payloads = _encode_mentions(directory, mentions)
        out.append((f"t{i:03d}", [(int(p[2] // 1000), p) for p in payloads]))
    return out


async def alert_latencies(
    kafka: Kafka, raw: str, storms: list[tuple[str, Storm]], mail: MailSink
) -> dict[str, float]:
    """Per storm: seconds from publishing the mention that made the detector raise the alert
    to the email's arrival. The detector names an alert ``<target>:<epoch>`` after the event
    time that raised it (the mention itself, or the end of the bucket its closing mention
    closed), so the crossing mention is the first one at or after that time. Storms are sent
    one at a time, a mention every 25 ms, as a live source would deliver them."""
    out: dict[str, float] = {}
    for target, storm in storms:
        sent: list[tuple[int, float]] = []
        for at, payload in storm:
            sent.append((at, time.monotonic()))
            await kafka.publish(raw, [payload])
            await asyncio.sleep(0.025)
        deadline = time.monotonic() + 10
        found = None
        while found is None and time.monotonic() < deadline:
            found = mail.first_alert(target, storm[0][0] - BUCKET_S)
            await asyncio.sleep(0.002)
        if found is None:
            continue
        alert_at, arrived = found
        crossing = next((t for at, t in sent if at >= alert_at), None)
        if crossing is not None:
            out[target] = arrived - crossing
        await asyncio.sleep(0.2)
    return out


# --------------------------------------------------------------------------- processes
class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def peak_rss_mb(self) -> float | None:
        """VmHWM: the resident high-water mark of the process over its whole life."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        return round(int(match.group(1)) / 1024, 1) if match else None

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def service(name: str, env: dict[str, str], log_dir: Path) -> Proc:
    return Proc(name, ["-m", "stormwatch_cli", "run", name], env, log_dir)


# --------------------------------------------------------------------------- SMTP sink
class MailSink:
    """A local SMTP server that notes when each alert email arrived, by alert id."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.arrived: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                now = time.monotonic()
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                body = msg.get_body(("plain",))
                text = body.get_content() if body is not None else ""
                found = re.search(r"alert id: (\S+)", str(text))
                with sink.lock:
                    sink.count += 1
                    if found:
                        sink.arrived.setdefault(found.group(1), now)
                return "250 OK"

        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.port = port

    def __enter__(self) -> MailSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def first_alert(self, target_id: str, not_before: int) -> tuple[int, float] | None:
        """(event time in the alert id, arrival) of the target's first alert since then."""
        with self.lock:
            found = [
                (int(alert_id.rsplit(":", 1)[1]), arrived)
                for alert_id, arrived in self.arrived.items()
                if alert_id.rsplit(":", 1)[0] == target_id
                and alert_id.rsplit(":", 1)[1].isdigit()
                and int(alert_id.rsplit(":", 1)[1]) >= not_before
            ]
        return min(found) if found else None


# --------------------------------------------------------------------------- Kafka helpers
_BROKER_PID: int | None = None
"""The local broker's process, for CPU accounting (None for a broker configured from outside)."""


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def broker() -> Iterator[str]:
    configured = os.environ.get("STORMWATCH_BENCH_KAFKA") or os.environ.get("STORMWATCH_TEST_KAFKA")
    if configured:
        yield configured
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="stormwatch-bench-kafka-"))
    subprocess.run([str(KAFKA_SH), "start", str(port), str(data)], check=True)
    global _BROKER_PID
    _BROKER_PID = int((data / "kafka.pid").read_text().strip())
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(KAFKA_SH), "stop", str(data)], check=False)
        # 0.3-1.2 GB of topic logs per run, left in /tmp by every run before 2026-12-03
        if os.environ.get("STORMWATCH_KEEP_KAFKA_DATA"):
            print(f"Kafka data kept in {data}", file=sys.stderr)
        else:
            shutil.rmtree(data, ignore_errors=True)


class Kafka:
    """Producer and offset probes in the benchmark's own event loop."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def __aenter__(self) -> Kafka:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient
        from stormwatch_shared.kafka import producer_config
        from stormwatch_shared.settings import KafkaSettings

        # as the services' producers (STORMWATCH_KAFKA_COMPRESSION applies to all)
        config = producer_config(KafkaSettings(bootstrap_servers=self.bootstrap))
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **config)
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        for client in (self.producer, self.admin, self.consumer):
            await client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()
        await self.consumer.stop()
        await self.admin.close()

    async def publish(self, topic: str, payloads: list[Payload]) -> None:
        pending = []
        for key, value, ts in payloads:
            pending.append(await self.producer.send(topic, value, key=key, timestamp_ms=ts))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)

    async def committed(self, group: str, topic: str) -> int:
        from aiokafka import TopicPartition

        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        offsets = await self.admin.list_consumer_group_offsets(group, partitions=tps)
        return sum(m.offset for m in offsets.values() if m is not None and m.offset > 0)

    async def end(self, topic: str) -> int:
        from aiokafka import TopicPartition

        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return sum((await self.consumer.end_offsets(tps)).values())


async def _wait_committed(
    kafka: Kafka, group: str, topic: str, want: int, within_s: float, procs: list[Proc]
) -> float:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if await kafka.committed(group, topic) >= want:
                return time.monotonic()
        except Exception:
            pass
        for p in procs:
            if p.proc.poll() is not None:
                raise RuntimeError(f"{p.name} exited ({p.proc.returncode}); see {p.log_path}")
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{group} did not commit {want} records of {topic} in {within_s:.0f} s")


def _env(bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "STORMWATCH_KAFKA_TOPIC_PREFIX": prefix,
        "STORMWATCH_KAFKA_PARTITIONS": str(PARTITIONS),
        "SENTIMENT_METRICS_PORT": "0",
        "ALERTING_METRICS_PORT": "0",
        "LISTENER_METRICS_PORT": "0",
        "STORMWATCH_LOG_LEVEL": "WARNING",
        # Own consumer groups: a shared broker's other users must not rebalance ours.
        "SENTIMENT_GROUP_ID": f"{prefix}sentiment",
        "ALERTING_GROUP_ID": f"{prefix}alerting",
        "ALERTING_DELIVERY_GROUP_ID": f"{prefix}delivery",
        **extra,
    }


def _topics(bootstrap: str, prefix: str) -> Any:
    from stormwatch_shared.kafka import ensure_topics
    from stormwatch_shared.settings import KafkaSettings

    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=PARTITIONS)
    ensure_topics(kafka)
    return kafka


async def _burst(
    kafka: Kafka,
    settings: Any,
    warmup: list[Payload],
    timed: list[Payload],
    last_group: str,
    last_topic: str,
    procs: list[Proc],
    lag_groups: list[tuple[str, str]],
) -> dict[str, Any]:
    from stormwatch_shared.topics import MENTIONS_RAW

    raw = settings.topic(MENTIONS_RAW)
    await kafka.publish(raw, warmup)
    await _wait_committed(kafka, last_group, last_topic, len(warmup), 180, procs)
    max_lag = {g: 0 for g, _ in lag_groups}
    stop = asyncio.Event()

    async def watch_lag() -> None:
        while not stop.is_set():
            for group, topic in lag_groups:
                with contextlib.suppress(Exception):
                    lag = await kafka.end(topic) - await kafka.committed(group, topic)
                    max_lag[group] = max(max_lag[group], lag)
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(watch_lag())
    pids = {p.name: p.proc.pid for p in procs} | {"broker": _BROKER_PID, "producer": os.getpid()}
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    await kafka.publish(raw, timed)
    published = time.monotonic()
    total = len(warmup) + len(timed)
    done = await _wait_committed(kafka, last_group, last_topic, total, 600, procs)
    cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    stop.set()
    await watcher
    # Where the CPU went during the burst, per timed mention: the bench's own process is the
    # producer (and the lag watcher), the broker is shared by everything.
    cpu_us = {
        name: round(1e6 * (after - before) / len(timed), 1)
        for name, after in cpu_after.items()
        if after is not None and (before := cpu_before[name]) is not None
    }
    return {
        "seconds": done - started,
        "publish_seconds": published - started,
        "per_s": len(timed) / (done - started),
        "max_lag": list(max_lag.values()),
        "cpu_us_per_mention": cpu_us,
    }


async def run_relay(
    bootstrap: str, warmup: list[Payload], timed: list[Payload], log_dir: Path
) -> dict[str, Any]:
    from stormwatch_shared.topics import MENTIONS_RAW, MENTIONS_SCORED

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = _topics(bootstrap, prefix)
    env = _env(bootstrap, prefix)
    raw, scored = settings.topic(MENTIONS_RAW), settings.topic(MENTIONS_SCORED)
    me = str(HERE)
    procs = [
        Proc("relay-1", [me, "relay", raw, scored, f"{prefix}relay-1", "512"], env, log_dir),
        Proc("relay-2", [me, "relay", scored, "", f"{prefix}relay-2", "1000"], env, log_dir),
    ]
    try:
        async with Kafka(bootstrap) as kafka:
            out = await _burst(
                kafka,
                settings,
                warmup,
                timed,
                f"{prefix}relay-2",
                scored,
                procs,
                [(f"{prefix}relay-1", raw), (f"{prefix}relay-2", scored)],
            )
    finally:
        for p in procs:
            p.stop()
    return out


async def run_pipeline(
    bootstrap: str,
    warmup: list[Payload],
    timed: list[Payload],
    scenario: Path,
    storm_bucket: int,
    log_dir: Path,
    latency: bool = True,
) -> dict[str, Any]:
    from stormwatch_shared.topics import MENTIONS_RAW, MENTIONS_SCORED

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = _topics(bootstrap, prefix)
    raw, scored = settings.topic(MENTIONS_RAW), settings.topic(MENTIONS_SCORED)
    storms = storm_payloads(scenario, storm_bucket)
    with MailSink() as mail:
        env = _env(
            bootstrap,
            prefix,
            ALERTING_SMTP_PORT=str(mail.port),
            ALERTING_EMAIL_TO="krisenstab@example.org",
        )
        procs = {n: service(n, env, log_dir) for n in ("alerting", "sentiment")}
        try:
            async with Kafka(bootstrap) as kafka:
                burst = await _burst(
                    kafka,
                    settings,
                    warmup,
                    timed,
                    f"{prefix}alerting",
                    scored,
                    list(procs.values()),
                    [(f"{prefix}sentiment", raw), (f"{prefix}alerting", scored)],
                )
                latencies = await alert_latencies(kafka, raw, storms, mail) if latency else {}
            rss = {f"peak_rss_mb_{n}": p.peak_rss_mb() for n, p in procs.items()}
        finally:
            for p in procs.values():
                p.stop()
    return {"burst": burst, "latencies": latencies, "rss": rss, "emails": mail.count}


def run_listener(bootstrap: str, scenario: Path, events: int, log_dir: Path) -> dict[str, Any]:
    """The real listener process replaying the scenario file at full speed."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    _topics(bootstrap, prefix)
    env = _env(bootstrap, prefix, LISTENER_REPLAY_DIR=str(scenario))
    started = time.monotonic()
    proc = service("listener", env, log_dir)
    peak = None
    while proc.proc.poll() is None:
        peak = proc.peak_rss_mb() or peak
        time.sleep(0.2)
    seconds = time.monotonic() - started
    code = proc.stop()
    if code != 0:
        raise RuntimeError(f"listener exited {code}; see {proc.log_path}")
    return {"seconds": seconds, "per_s": events / seconds, "peak_rss_mb": peak}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _across(runs: list[dict[str, Any]], key: str, how: Any) -> float | None:
    """``how`` (max, median) of one figure over the pairs that have it, or None."""
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(how(values), 1) if values else None


def _p99(values: list[float]) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), 99))


def run(mentions: int = N_TIMED, listener: bool = True) -> dict[str, Any]:
    from stormwatch_shared.settings import KafkaSettings

    now = time.time()
    # The storm bucket ends a few minutes before now: timestamps as a live source gives them.
    storm_bucket = int(now // BUCKET_S) - 3
    with tempfile.TemporaryDirectory(prefix="stormwatch-bench-") as tmp:
        work = Path(tmp)
        scenario = work / "scenario"
        write_scenario(scenario, mentions + N_WARMUP, end=storm_bucket * BUCKET_S)
        t0 = time.perf_counter()
        payloads = _encode_mentions(scenario)
        encode_s = time.perf_counter() - t0
        if len(payloads) < mentions + N_WARMUP:
            raise RuntimeError(f"scenario gave {len(payloads)} events, need {mentions + N_WARMUP}")
        warmup, timed = payloads[:N_WARMUP], payloads[N_WARMUP : N_WARMUP + mentions]
        pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        with broker() as bootstrap:
            for i in range(PAIRS):

                def relay_phase(i: int = i) -> dict[str, Any]:
                    return asyncio.run(run_relay(bootstrap, warmup, timed, work / f"logs-relay{i}"))

                def pipeline_phase(i: int = i) -> dict[str, Any]:
                    return asyncio.run(
                        run_pipeline(
                            bootstrap,
                            warmup,
                            timed,
                            scenario,
                            storm_bucket,
                            work / f"logs-pipe{i}",
                            latency=i == 0,  # the alert path, once: it is not a throughput
                        )
                    )

                # relay first in the first and third pair, pipeline first in the second
                # (ABBA): a host that speeds up or slows down over the run favours neither
                if i % 2 == 0:
                    relay = relay_phase()
                    pipe = pipeline_phase()
                else:
                    pipe = pipeline_phase()
                    relay = relay_phase()
                pairs.append((relay, pipe))
            lst = (
                run_listener(bootstrap, scenario, len(payloads), work / "logs-listener")
                if listener
                else None
            )
    relay, pipe = pairs[0]
    lat = sorted(pipe["latencies"].values())
    burst = pipe["burst"]
    ratios = [p["burst"]["per_s"] / r["per_s"] for r, p in pairs]
    result: dict[str, Any] = {
        "pipeline_mentions": mentions,
        "pipeline_targets": N_TARGETS,
        "pipeline_partitions": PARTITIONS,
        "pipeline_span_h": SPAN_S // 3600,
        # Which texts were replayed: the fallback set is shorter and cheaper to score, so
        # figures from the two are not comparable (an A/B from a worktree without ../shared
        # once compared them by mistake).
        "pipeline_texts": "dev-set tweets" if SHARED_SENTIMENT.is_dir() else "built-in fallback",
        "pipeline_compression": KafkaSettings().compression,  # what every producer here used
        "pipeline_pairs": len(pairs),
        "pipeline_mentions_per_s": round(_median([p["burst"]["per_s"] for _, p in pairs])),
        "relay_mentions_per_s": round(_median([r["per_s"] for r, _ in pairs])),
        "pipeline_relay_ratio": round(_median(ratios), 3),
        "pipeline_relay_ratio_min": round(min(ratios), 3),
        "pipeline_relay_ratios": [round(x, 3) for x in ratios],
        "pipeline_mentions_per_s_pairs": [round(p["burst"]["per_s"]) for _, p in pairs],
        "relay_mentions_per_s_pairs": [round(r["per_s"]) for r, _ in pairs],
        "pipeline_publish_mentions_per_s": round(mentions / burst["publish_seconds"]),
        "pipeline_encode_mentions_per_s": round(len(payloads) / encode_s),
        "backpressure_burst_mentions": mentions,
        "backpressure_max_lag_sentiment": burst["max_lag"][0],
        "backpressure_max_lag_alerting": burst["max_lag"][1],
        "backpressure_drain_s": round(burst["seconds"], 2),
        "alert_latency_storms": STORMS,
        "alert_latency_received": len(lat),
        "alert_latency_p50_s": round(lat[len(lat) // 2], 3) if lat else None,
        "alert_latency_p99_s": round(_p99(lat), 3) if lat else None,
        "alert_latency_max_s": round(lat[-1], 3) if lat else None,
        **{k: _across([p["rss"] for _, p in pairs], k, max) for k in pipe["rss"]},
        **{
            f"cpu_us_per_mention_{k}": _across(
                [p["burst"]["cpu_us_per_mention"] for _, p in pairs], k, _median
            )
            for k in burst["cpu_us_per_mention"]
        },
        **{
            f"relay_cpu_us_per_mention_{k}": _across(
                [r["cpu_us_per_mention"] for r, _ in pairs], k, _median
            )
            for k in relay["cpu_us_per_mention"]
        },
    }
    if lst is not None:
        result["listener_replay_mentions_per_s"] = round(lst["per_s"])
        result["peak_rss_mb_listener"] = lst["peak_rss_mb"]
    return result


# --------------------------------------------------------------------------- relay stage
def relay_main(source: str, sink: str, group: str, batch: int) -> None:
    """A pass-through consumer with the services' framework and batch settings: the work a
    stage cannot avoid (fetch, decompress, publish, commit) and nothing else."""
    from faststream import FastStream
    from faststream.middlewares import AckPolicy
    from stormwatch_shared.service import (
        ConfirmedBatches,
        KeyedSender,
        OffsetCommitter,
        current_message,
        make_broker,
        raw_body,
        serve,
    )
    from stormwatch_shared.settings import KafkaSettings

    kafka = KafkaSettings()
    broker = make_broker(kafka, group)
    sender = KeyedSender(broker)  # the services' publish path, so the ceiling is theirs too
    app = FastStream(broker)
    # and their commit path: offsets committed once the batch's writes are confirmed, while
    # the next batch is handled (sentiment's ConfirmedBatches), not in a round trip per batch
    committer = OffsetCommitter(logging.getLogger("relay"))
    confirmed = ConfirmedBatches(committer, logging.getLogger("relay"))
    sync_commit = os.environ.get("BENCH_RELAY_COMMIT") == "sync"  # the relay before 2026-12-03

    @broker.subscriber(
        source,
        group_id=group,
        batch=True,
        max_records=batch,
        batch_timeout_ms=20,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR if sync_commit else AckPolicy.MANUAL,
        decoder=raw_body,
    )
    async def relay(bodies: list[bytes]) -> None:
        message = current_message(broker)
        generation = confirmed.generation
        pending = []
        if sink:
            pending = await sender.send_many(
                [
                    (body, record.key)
                    for body, record in zip(bodies, message.raw_message, strict=True)
                ],
                sink,
            )
        if sync_commit:
            await asyncio.gather(*pending)
            return
        await confirmed.hand_over(message.consumer, message.raw_message, pending, generation)

    # the services' process settings too (the collector's thresholds, startup objects
    # frozen): the relay ran at CPython's defaults until 2026-12-04
    serve(app, kafka, "relay")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "relay":
        relay_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        print(json.dumps(run(), indent=2))
