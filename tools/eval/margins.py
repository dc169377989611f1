"""How far from paging the detector came outside crises: margins against the thresholds.

Replays every scenario through the real path (``stormwatch_cli.replay``) with the detector's
internals recorded: every burst test (``Detector._burst``) and every bucket close's window
test, each with the gates as they stood. Outside the labelled crisis windows it reports the
highest score reached with the share and new-author gates passing (what would page) and
without (what the gates held back, and how close the negative share came to its gate).
Usage: ``PYTHONHASHSEED=0 .venv/bin/python tools/eval/margins.py [preset] [variant seeds]``
(variants as in ``robustness.py``; without them only the original scenarios).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drills import ts
from robustness import ROOT, VARIANTS, _iso, perturb


def _record(det_cls: Any, rec: list[tuple[str, str, float, float, int, Any]]) -> Any:
    orig_burst = det_cls._burst
    orig_close = det_cls._close_bucket

    def span_gates(self: Any, st: Any) -> Any:
        keys = sorted(st.open)
        opened = [st.open[k] for k in keys]
        span = list(st.window)
        drop = len(span) + len(opened) - self._w
        span = span[drop:] + opened if drop > 0 else span + opened
        return self._gates(st, self._shares(st)[0], span)

    def warm(self: Any, st: Any) -> bool:
        return bool(st.next_close - st.first_bucket >= self._warmup_buckets)

    def burst(self: Any, st: Any, at: float, b: int, need: float) -> Any:
        r = orig_burst(self, st, at, b, -1e9)  # every run, whatever its score
        if r is not None and warm(self, st):
            tid = next(t for t, s in self._states.items() if s is st)
            rec.append(("burst", tid, at, r.score, r.authors, span_gates(self, st)))
        return r if r is not None and r.score >= need else None

    def close(self: Any, tid: str, st: Any, k: int, bk: Any) -> Any:
        idle = st.alert_id is None  # only closes that could open an alert
        tr = orig_close(self, tid, st, k, bk)
        if idle and warm(self, st):
            t = st.test()
            score = max(t.score, t.cusum) if t is not None else 0.0
            if score >= 2.0:
                g = self._gates(st, self._shares(st)[0])
                rec.append(("window", tid, (k + 1) * self._bucket_s, score, g.authors, g))
        return tr

    det_cls._burst, det_cls._close_bucket = burst, close
    return orig_burst, orig_close


def margins(dirs: list[Path], sensitivity: str = "normal") -> dict[str, Any]:
    from stormwatch_alerting.domain.detector import Detector, preset

    from stormwatch_cli.replay import replay

    cfg = preset(sensitivity)
    worst: dict[str, Any] = {}
    for d in dirs:
        labels = orjson.loads((d / "labels.json").read_bytes())
        crises = [(ts(c["start"]), ts(c["end"])) for c in labels["crises"]]
        rec: list[tuple[str, str, float, float, int, Any]] = []
        saved = _record(Detector, rec)
        try:
            replay(d, sensitivity=sensitivity)
        finally:
            Detector._burst, Detector._close_bucket = saved  # type: ignore[method-assign]
        for kind, tid, at, score, authors, g in rec:
            if any(a <= at <= b for a, b in crises):
                continue
            lo = max(g.share_usual + cfg.share_margin, g.share_usual * cfg.share_ratio)
            passed = g.share_ok and g.new_ok
            key = f"{kind}:{'gates pass' if passed else 'gates fail'}"
            need = cfg.burst_min_authors if kind == "burst" else cfg.watch_min_authors
            if kind == "burst" and authors < need:
                continue
            item = {
                "score": round(score, 2),
                "authors": authors,
                "share": round(g.share, 3),
                "share_gate": round(lo, 3),
                "where": f"{d.parent.name}/{d.name}:{tid}",
                "at": _iso(at),
            }
            if key not in worst or score > worst[key]["score"]:
                worst[key] = item
    return {"thresholds": [cfg.watch_score, cfg.warning_score], "worst_outside": worst}


if __name__ == "__main__":
    sens = sys.argv[1] if len(sys.argv) > 1 else "normal"
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    base = sorted(p for p in ROOT.iterdir() if p.is_dir())
    print("original:", orjson.dumps(margins(base, sens), option=orjson.OPT_INDENT_2).decode())
    if seeds:
        with tempfile.TemporaryDirectory() as tmp:
            dirs = []
            for variant in VARIANTS:
                for seed in range(seeds):
                    for src in base:
                        dst = Path(tmp) / f"{variant}-{seed}" / src.name
                        perturb(src, dst, variant, seed)
                        dirs.append(dst)
            out = margins(dirs, sens)
            print("perturbed:", orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
