"""Detector runs whose every output is printed as exact JSON, to compare builds.

``python -m tests.support.native_workload`` prints one JSON document: for each workload the
transitions (evidence included) and the final snapshots of all targets, floats written in
their shortest exact form. Run once with ``STORMWATCH_PURE_PYTHON=1`` and once without, the
two outputs must be equal byte for byte (``tests/unit/test_native_detector.py``).
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from typing import Any

import orjson
from stormwatch_alerting import domain
from stormwatch_alerting.domain.detector import Detector, preset
from stormwatch_alerting.domain.types import Observation, Transition

T0 = 1_772_409_600.0  # 2026-03-02, a Monday
DAY = 86_400.0


def _stream(seed: int, targets: int, n: int, span_s: float, skew: float) -> list[Observation]:
    """Skewed popularity over ``targets`` (quiet ones close many empty buckets), a day
    rhythm, authors from a pool, replies, topics and late arrivals."""
    rng = random.Random(seed)
    weights = [(1 + i) ** -skew for i in range(targets)]
    out = []
    for i in range(n):
        at = T0 + span_s * i / n + rng.uniform(-120.0, 0.0)
        label = rng.choice(("negative", "neutral", "positive", "neutral"))
        out.append(
            Observation(
                target_id=f"t{rng.choices(range(targets), weights)[0]}",
                at=at,
                mention_id=f"m{seed}:{i}",
                author_id=f"a{rng.randrange(4000)}",
                followers=rng.randrange(10, 50_000),
                negative=rng.uniform(0.5, 1.0) if label == "negative" else rng.uniform(0, 0.3),
                label=label,
                in_reply_to=f"m{seed}:{rng.randrange(i)}" if i and rng.random() < 0.3 else None,
                topics=("wartezeit",) if label == "negative" and rng.random() < 0.3 else (),
                url=f"https://example.invalid/{seed}/{i}",
                text=f"post {i}",
            )
        )
    return out


def _storm(seed: int, target: str, at: float, authors: int, spam: bool) -> list[Observation]:
    rng = random.Random(seed)
    return [
        Observation(
            target_id=target,
            at=at + 3600.0 * i / authors,
            mention_id=f"s{seed}:{i}",
            author_id=f"spam{i % 2}" if spam else f"new{seed}:{i}",
            followers=rng.randrange(10, 200_000),
            negative=rng.uniform(0.7, 1.0),
            label="negative",
            in_reply_to="root" if rng.random() < 0.5 else None,
            topics=("hygiene",) if rng.random() < 0.5 else (),
            url=f"https://example.invalid/s/{i}",
        )
        for i in range(authors)
    ]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _run(det: Detector, obs: list[Observation]) -> list[Transition]:
    out: list[Transition] = []
    for o in sorted(obs, key=lambda o: o.at):
        out.extend(det.observe(o))
    return out


def workloads() -> dict[str, Any]:
    result: dict[str, Any] = {}
    quiet = _stream(1, targets=40, n=6000, span_s=9 * DAY, skew=0.8)
    storms = (
        _storm(2, "t3", T0 + 7.2 * DAY, 60, spam=False)
        + _storm(3, "t17", T0 + 7.6 * DAY, 25, spam=False)
        + _storm(4, "t0", T0 + 8.1 * DAY, 80, spam=True)
    )
    for name in ("calm", "normal", "eager"):
        det = Detector(preset(name))
        transitions = _run(det, quiet + storms)
        transitions.extend(det.advance_all(T0 + 10 * DAY))
        result[name] = {
            "transitions": _plain(transitions),
            "status": {t: _plain(det.status(t)) for t in sorted(det.targets())},
            "snapshots": {t: det.snapshot(t) for t in sorted(det.targets())},
        }
    # a restart from snapshots mid-stream continues as if none happened
    obs = sorted(quiet + storms, key=lambda o: o.at)
    cut = len(obs) * 4 // 5
    first = Detector()
    before = _run(first, obs[:cut])
    second = Detector()
    for tid in sorted(first.targets()):
        second.restore(tid, json.loads(json.dumps(first.snapshot(tid))))
    after = _run(second, obs[cut:])
    result["restored"] = {"transitions": _plain(before + after)}
    return result


def main() -> None:
    doc = {"native": domain.NATIVE, "workloads": workloads()}
    sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


if __name__ == "__main__":
    main()
