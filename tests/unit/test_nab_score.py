"""The NAB scorer against NAB's published figures on the same five files.

The published per-file scores of real detectors cannot be recomputed without their detection
files (not in ../shared); what can be checked, and is: the window and probation bookkeeping
(every detector's TP+FN, TN+FP and Total_Count), the never-alerting detector's exact scores,
the normalization (README's table from the published raw scores) and the scoring rules on
hand-computed cases.
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "eval"))

from nab_score import (  # noqa: E402
    load_series_times,
    load_windows,
    normalized,
    probation_rows,
    score_file,
    sigmoid,
    window_indices,
)

NAB = ROOT.parent / "shared" / "data" / "nab"
PUBLISHED = NAB / "published_detector_scores.csv"


def published() -> list[dict[str, str]]:
    with PUBLISHED.open(newline="") as fh:
        return list(csv.DictReader(fh))


def files() -> dict[str, tuple[int, list[tuple[int, int]]]]:
    windows = load_windows(NAB)
    out = {}
    for name, wins in windows.items():
        times = load_series_times(NAB / name)
        out[name] = (len(times), window_indices(times, wins))
    return out


FILES = files()


@pytest.mark.parametrize(
    "row", published(), ids=lambda r: f"{r['Detector']}-{r['Profile']}-{r['File'][-8:-4]}"
)
def test_window_and_probation_bookkeeping_matches_published_counts(row: dict[str, str]) -> None:
    n, wins = FILES[row["File"]]
    prob = probation_rows(n)
    in_windows = sum(b - a + 1 for a, b in wins)
    tp, tn, fp, fn = (int(row[k]) for k in ("TP", "TN", "FP", "FN"))
    assert tp + fn == in_windows - sum(max(0, min(b, prob - 1) - a + 1) for a, b in wins)
    assert tp + tn + fp + fn == n - prob
    assert int(row["Total_Count"]) in (n, n - prob)


@pytest.mark.parametrize(
    "row",
    [r for r in published() if r["Detector"] == "null"],
    ids=lambda r: f"{r['Profile']}-{r['File'][-8:-4]}",
)
def test_never_alerting_scores_exactly_as_published(row: dict[str, str]) -> None:
    n, wins = FILES[row["File"]]
    s = score_file([0] * n, wins, row["Profile"])
    assert s.raw == pytest.approx(float(row["Score"]), abs=1e-9)
    assert (s.tp, s.tn, s.fp, s.fn) == tuple(int(row[k]) for k in ("TP", "TN", "FP", "FN"))


README_TABLE = {  # detector: (standard, low FP, low FN), from ../shared/data/nab/README.md
    "ARTime": (82.8, 72.2, 88.5),
    "earthgeckoSkyline": (68.1, 46.2, 76.6),
    "knncad": (65.3, 41.1, 74.8),
    "numenta": (63.5, 57.9, 67.4),
    "contextOSE": (61.9, 61.2, 63.7),
    "twitterADVec": (58.4, 33.5, 68.1),
    "windowedGaussian": (56.7, 23.4, 69.0),
}


@pytest.mark.parametrize("detector", sorted(README_TABLE))
def test_normalization_reproduces_the_published_table(detector: str) -> None:
    raw: dict[str, float] = defaultdict(float)
    for r in published():
        if r["Detector"] == detector:
            raw[r["Profile"]] += float(r["Score"])
    n_windows = sum(len(w) for _, w in FILES.values())
    got = tuple(
        round(normalized(raw[p], n_windows, p), 1)
        for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
    )
    assert got == README_TABLE[detector]


def test_sixteen_windows_on_five_files() -> None:
    assert sum(len(w) for _, w in FILES.values()) == 16


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        # alert on a window's first row: +1 (s(-1)/s(-1))
        ({1000}, 1.0),
        # alert on its last row: y = -1/101
        ({1100}, sigmoid(-1 / 101) / sigmoid(-1.0)),
        # only the earliest detection in a window counts
        ({1050, 1000, 1100}, 1.0),
        # a false positive with no window before it costs fp
        ({900}, -1.0 - 0.11),
        # just after the window: costs little; far after: about fp
        ({1000, 1101}, 1.0 + 0.11 * sigmoid(1 / 100)),
        ({1000, 1900}, 1.0 + 0.11 * sigmoid(800 / 100)),
        # detections inside the probation period are ignored
        ({10}, -1.0),
    ],
)
def test_scoring_rules_on_hand_computed_cases(alerts: set[int], expected: float) -> None:
    n = 2000
    flags = [1 if i in alerts else 0 for i in range(n)]
    s = score_file(flags, [(1000, 1100)], "standard")
    assert s.raw == pytest.approx(expected, abs=1e-12)


def test_sigmoid_shape() -> None:
    assert sigmoid(0.0) == 0.0
    assert sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert probation_rows(15000) == 750 and probation_rows(1000) == 150
