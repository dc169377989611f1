"""Leave-one-file-out check of the volume mode: the honest estimate for unseen series.

A small grid of the series detector's free parameters (threshold, refractory period, tested
scales; with ``--wide`` the weight of the time-of-day spread instead of the scales) is scored
per file. For every file, the configuration with the best standard +
low-FP score on the *other four* files is chosen and scored on the held-out file; the
held-out raw scores are summed and normalized like NAB does. If the default only did well
because it was fitted to all five files, this figure would show it.
"""

from __future__ import annotations

import csv
import itertools
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nab_score import (
    PROFILES,
    load_series_times,
    load_windows,
    normalized,
    score_file,
    window_indices,
)
from stormwatch_alerting.domain.series import SeriesConfig
from stormwatch_alerting.series_cli import detect_series

GRID: dict[str, tuple[Any, ...]] = {
    "threshold": (5.0, 5.5, 6.0, 6.5, 7.0),
    "refractory_s": (12 * 3600.0, 24 * 3600.0, 36 * 3600.0),
    "scales": ((1,), (1, 12)),
}
WIDE_GRID: dict[str, tuple[Any, ...]] = {
    "threshold": (5.0, 5.5, 6.0, 6.5, 7.0),
    "refractory_s": (24 * 3600.0, 36 * 3600.0),
    "slot_scale": (0.0, 1.0, 1.25),
}
"""The structural choice made on all five files (time-of-day spread, its weight) left free too."""
SELECT = ("standard", "reward_low_FP_rate")


def _per_file(nab_dir: Path, cfg: SeriesConfig) -> dict[str, dict[str, float]]:
    windows = load_windows(nab_dir)
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(windows):
            dst = Path(tmp) / Path(name).name
            detect_series(nab_dir / name, dst, cfg)
            with dst.open(newline="", encoding="utf-8") as fh:
                alerts = [int(r["alert"]) for r in csv.DictReader(fh)]
            idx = window_indices(load_series_times(nab_dir / name), windows[name])
            out[name] = {p: score_file(alerts, idx, p).raw for p in PROFILES}
            out[name]["windows"] = float(len(idx))
    return out


def leave_one_file_out(
    nab_dir: Path, grid: dict[str, tuple[Any, ...]] | None = None
) -> dict[str, Any]:
    grid = GRID if grid is None else grid
    configs = [
        replace(SeriesConfig(), **dict(zip(grid, values, strict=True)))
        for values in itertools.product(*grid.values())
    ]
    scored = [_per_file(nab_dir, c) for c in configs]
    files = sorted(scored[0])

    def norm(i: int, subset: list[str], p: str) -> float:
        raw = sum(scored[i][f][p] for f in subset)
        return normalized(raw, int(sum(scored[i][f]["windows"] for f in subset)), p)

    held: dict[str, float] = {p: 0.0 for p in PROFILES}
    chosen: dict[str, dict[str, Any]] = {}
    for f in files:
        rest = [g for g in files if g != f]
        best = max(range(len(configs)), key=lambda i: sum(norm(i, rest, p) for p in SELECT))
        for p in PROFILES:
            held[p] += scored[best][f][p]
        c = configs[best]
        chosen[f] = {k: getattr(c, k) for k in grid}
    n_windows = int(sum(scored[0][f]["windows"] for f in files))
    default = SeriesConfig()
    d_index = next(
        i for i, c in enumerate(configs) if all(getattr(c, k) == getattr(default, k) for k in grid)
    )
    return {
        "normalized": {p: normalized(held[p], n_windows, p) for p in PROFILES},
        "chosen": chosen,
        "grid_size": len(configs),
        "default_rank": sorted(
            range(len(configs)), key=lambda i: -sum(norm(i, files, p) for p in SELECT)
        ).index(d_index)
        + 1,
    }


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2]
    res = leave_one_file_out(
        root.parent / "shared" / "data" / "nab", WIDE_GRID if "--wide" in sys.argv[1:] else None
    )
    for f, c in res["chosen"].items():
        print(Path(f).name, c)
    print(
        {k: round(v, 1) for k, v in res["normalized"].items()}, "default rank", res["default_rank"]
    )
