"""A fast storm on a busy target whose authors are mostly new anyway (a large hospital):
three hours of ordinary posts must not dilute forty complaints in five minutes below the
share gate. Synthetic stream with explicit event times (the fake clock)."""

from __future__ import annotations

import random

import pytest
from stormwatch_alerting.domain.detector import Detector, preset
from stormwatch_alerting.domain.types import Observation

T0 = 1_772_409_600.0  # 2026-03-02T00:00:00Z
DAY = 86_400.0
LEVEL = {"watch": 1, "warning": 2, "critical": 3}


def busy_background(seed: int, days: float, per_5min: float = 5.0) -> list[Observation]:
    """About five mentions per five minutes, nearly every author new, ~25 % negative."""
    rng = random.Random(seed)
    out: list[Observation] = []
    t = T0
    i = 0
    while t < T0 + days * DAY:
        t += rng.expovariate(per_5min / 300.0)
        negative = rng.random() < 0.25
        out.append(
            Observation(
                target_id="klinikum",
                at=t,
                mention_id=f"b{i}",
                author_id=f"a{rng.randrange(1_000_000)}",
                followers=rng.randrange(5, 3000),
                negative=0.8 if negative else 0.05,
                label="negative" if negative else "neutral",
            )
        )
        i += 1
    return out


def storm(start: float, size: int) -> list[Observation]:
    """``size`` new authors, one every five seconds, complaining under one post."""
    return [
        Observation(
            target_id="klinikum",
            at=start + 5 + 5 * j,
            mention_id=f"s{j}",
            author_id=f"stormer{j}",
            followers=1000,
            negative=0.77,
            label="negative",
            in_reply_to="x:post",
        )
        for j in range(size)
    ]


def highest_level(observations: list[Observation]) -> int:
    detector = Detector(preset("normal"))
    level = 0
    for obs in observations:
        for tr in detector.observe(obs):
            level = max(level, LEVEL[tr.level])
    return level


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_background_alone_never_pages(seed: int) -> None:
    assert highest_level(busy_background(seed, 2.0)) == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_forty_complaints_in_five_minutes_page_a_busy_target(seed: int) -> None:
    background = busy_background(seed, 2.0)
    end = background[-1].at
    start = (end // 300 + 1) * 300
    assert highest_level([*background, *storm(start, 40)]) >= LEVEL["warning"]
