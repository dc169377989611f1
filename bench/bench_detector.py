"""Detector throughput: mentions per second on one core, synthetic observations.

The observations are built before timing, so only ``Detector.observe`` (and the bucket closes
it triggers) is measured: the figure the service's per-partition consumer depends on.
"""

from __future__ import annotations

import random
import time

from stormwatch_alerting.domain.detector import Detector
from stormwatch_alerting.domain.types import Observation

T0 = 1_772_409_600.0


def _observations(n: int, targets: int = 20, seed: int = 1) -> list[Observation]:
    rng = random.Random(seed)
    out = []
    t = T0
    for i in range(n):
        t += rng.expovariate(1 / 0.5)  # two mentions a second over all targets
        label = rng.choice(("negative", "neutral", "positive", "neutral"))
        out.append(
            Observation(
                target_id=f"t{rng.randrange(targets)}",
                at=t,
                mention_id=f"m{i}",
                author_id=f"a{rng.randrange(50_000)}",
                followers=rng.randrange(10, 5000),
                negative=0.8 if label == "negative" else 0.1,
                label=label,
                in_reply_to=f"m{rng.randrange(i)}" if i and rng.random() < 0.3 else None,
                topics=("wait",) if label == "negative" and rng.random() < 0.3 else (),
                url=f"https://example.invalid/{i}",
            )
        )
    return out


def run(n: int = 300_000, repeats: int = 3) -> dict[str, float]:
    obs = _observations(n)
    best = 0.0
    for _ in range(repeats):
        det = Detector()
        observe = det.observe
        start = time.perf_counter()
        for o in obs:
            observe(o)
        elapsed = time.perf_counter() - start
        best = max(best, n / elapsed)
    return {"detector_mentions_per_s": round(best)}


if __name__ == "__main__":
    print(run())
