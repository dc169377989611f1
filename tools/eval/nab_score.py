"""A NAB scorer written from the rules in ../shared/data/nab/README.md.

Detections are the records flagged ``alert = 1``. The scorer is separate from the detector so
the detector can never see the labels.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fn": 1.0, "fp": 0.11},
    "reward_low_FP_rate": {"tp": 1.0, "fn": 1.0, "fp": 0.22},
    "reward_low_FN_rate": {"tp": 1.0, "fn": 2.0, "fp": 0.11},
}


def sigmoid(y: float) -> float:
    """NAB's scaled sigmoid: about +1 far left of a window's end, 0 at it, -1 far right."""
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip()[:19])


def probation_rows(n: int, percent: float = 0.15) -> int:
    return min(math.floor(percent * n), int(percent * 5000))


def window_indices(times: list[datetime], windows: list[list[str]]) -> list[tuple[int, int]]:
    """Each window as [first row at or after its start, last row at or before its end]."""
    out = []
    for start_s, end_s in windows:
        start, end = parse_time(start_s), parse_time(end_s)
        idx = [i for i, t in enumerate(times) if start <= t <= end]
        if idx:
            out.append((idx[0], idx[-1]))
    return out


@dataclass(frozen=True)
class FileScore:
    raw: float
    tp: int
    fp: int
    fn: int
    tn: int
    windows: int
    detected_windows: int


def score_file(
    alerts: list[int], windows: list[tuple[int, int]], profile: str = "standard"
) -> FileScore:
    w = PROFILES[profile]
    n = len(alerts)
    prob = probation_rows(n)
    in_window = [-1] * n
    for k, (a, b) in enumerate(windows):
        for i in range(a, b + 1):
            in_window[i] = k
    raw = 0.0
    tp = fp = fn = tn = 0
    first_hit: dict[int, int] = {}
    for i in range(prob, n):
        k = in_window[i]
        if k >= 0:
            if alerts[i]:
                tp += 1
                first_hit.setdefault(k, i)
            else:
                fn += 1
            continue
        if not alerts[i]:
            tn += 1
            continue
        fp += 1
        prev = [kk for kk, (a, b) in enumerate(windows) if b < i]
        if not prev:
            raw -= w["fp"]
        else:
            a, b = windows[prev[-1]]
            raw += w["fp"] * sigmoid((i - b) / (b - a))
    for k, (a, b) in enumerate(windows):
        if k in first_hit:
            i = first_hit[k]
            y = -(b - i + 1) / (b - a + 1)
            raw += w["tp"] * sigmoid(y) / sigmoid(-1.0)
        else:
            raw -= w["fn"]
    return FileScore(raw, tp, fp, fn, tn, len(windows), len(first_hit))


def normalized(raw_total: float, n_windows: int, profile: str) -> float:
    w = PROFILES[profile]
    null = -w["fn"] * n_windows
    perfect = w["tp"] * n_windows
    return 100.0 * (raw_total - null) / (perfect - null)


def load_series_times(path: Path) -> list[datetime]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [parse_time(r["timestamp"]) for r in csv.DictReader(fh)]


def load_windows(nab_dir: Path) -> dict[str, list[list[str]]]:
    data: dict[str, list[list[str]]] = json.loads(
        (nab_dir / "combined_windows.json").read_text(encoding="utf-8")
    )
    return data
