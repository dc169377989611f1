"""Run ``detect-series`` on the NAB realTweets files and score them with ``nab_score``."""

from __future__ import annotations

import csv
import sys
import tempfile
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


def evaluate_nab(nab_dir: Path, config: SeriesConfig | None = None) -> dict[str, Any]:
    windows = load_windows(nab_dir)
    files: dict[str, Any] = {}
    totals = {p: 0.0 for p in PROFILES}
    n_windows = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(windows):
            src = nab_dir / name
            out = Path(tmp) / Path(name).name
            detect_series(src, out, config)
            with out.open(newline="", encoding="utf-8") as fh:
                alerts = [int(r["alert"]) for r in csv.DictReader(fh)]
            idx = window_indices(load_series_times(src), windows[name])
            n_windows += len(idx)
            entry: dict[str, Any] = {"alerts": sum(alerts), "windows": len(idx)}
            for p in PROFILES:
                s = score_file(alerts, idx, p)
                totals[p] += s.raw
                entry[p] = s
            files[name] = entry
    return {
        "files": files,
        "normalized": {p: normalized(totals[p], n_windows, p) for p in PROFILES},
        "windows": n_windows,
    }


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2]
    res = evaluate_nab(root.parent / "shared" / "data" / "nab")
    for name, e in res["files"].items():
        s = e["standard"]
        print(
            f"{name:45s} alerts={e['alerts']:3d} windows={s.detected_windows}/{s.windows} "
            f"fp={s.fp} raw={s.raw:.3f}"
        )
    print({k: round(v, 1) for k, v in res["normalized"].items()})
