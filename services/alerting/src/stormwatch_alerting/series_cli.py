"""``stormwatch detect-series IN.csv OUT.csv``: the detector's volume-only mode on a CSV.

Input columns ``timestamp,value`` (value = count in the bucket ending at timestamp), output
``timestamp,value,anomaly_score,alert`` with the same rows in the same order; ``alert`` is 1
on the record at which an alert is raised. One default configuration, no per-file tuning.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from stormwatch_alerting.domain.series import SeriesConfig, SeriesDetector

EXAMPLE = (
    "example: stormwatch detect-series ../shared/data/nab/realTweets/Twitter_volume_FB.csv out.csv"
)


def _epoch(text: str) -> float:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # NAB timestamps are naive UTC
    return value.timestamp()


def _bucket_seconds(times: list[float]) -> float:
    """The series' own step: the median gap, robust to a few missing or doubled records.

    Called on the first records only (see :func:`detect_series`), so no output depends on
    a later record, not even through the step."""
    gaps = [b - a for a, b in pairwise(times) if b > a]
    return float(statistics.median(gaps)) if gaps else 300.0


def detect_series(in_csv: Path, out_csv: Path, config: SeriesConfig | None = None) -> None:
    with in_csv.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise ValueError(f"{in_csv}: expected columns timestamp,value")
        rows = [(r["timestamp"], r["value"]) for r in reader]
    times = [_epoch(t) for t, _ in rows]
    cfg = config or SeriesConfig()
    # The step comes from the records before the first that can score (min_history residuals
    # are needed first), so each output uses only the records up to its own.
    det = SeriesDetector(cfg, bucket_s=_bucket_seconds(times[: cfg.min_history]))
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["timestamp", "value", "anomaly_score", "alert"])
        for (ts, raw), at in zip(rows, times, strict=True):
            value = float(raw) if raw.strip() else 0.0
            p = det.update(at, value)
            w.writerow([ts, raw, f"{p.anomaly_score:.6f}", 1 if p.alert else 0])


def _run(args: argparse.Namespace) -> int:
    detect_series(args.input, args.output)
    return 0


def register(subparsers: Any) -> None:
    """Add ``detect-series`` to the ``stormwatch`` command line."""
    p = subparsers.add_parser(
        "detect-series",
        help="volume-only detection on a timestamp,value count series (CSV)",
        description=(
            "Runs the detector's volume-only mode over a count series and writes "
            "timestamp,value,anomaly_score,alert (alert=1 on the record where an alert is "
            "raised). anomaly_score is 0.5 at the alert threshold."
        ),
        epilog=EXAMPLE,
    )
    p.add_argument("input", type=Path, help="CSV with columns timestamp,value")
    p.add_argument("output", type=Path, help="where to write the scored CSV")
    p.set_defaults(func=_run)
