"""Robustness of the drill figures: the dev scenarios, perturbed, through the real replay.

The drills are four files; another set from the same generator is kept aside. To see whether
a detector setting holds beyond these files, each scenario is replayed in perturbed copies:

- ``drop``: a random 25 % of the background mentions (outside every labelled episode) removed;
- ``shift``: every time (mentions and labels) moved by a random offset of up to +-6 h and a
  random number of seconds, so buckets, hours of the day and the baseline's phase all move;
- ``rename``: every author id and handle replaced by a random one;
- ``thin``: a random 25 % of the mentions inside crisis windows removed (a smaller storm);
- ``all``: all four at once;
- ``inject``: complaints from new accounts added at random (Poisson, 4 a day, outside every
  labelled episode), texts drawn from the firestorm scenarios' crisis windows: more
  independent new complainers than the drills have, the null the burst test assumes. It
  checks that its calibration, not the quiet of the dev files, keeps it from paging.

Each variant runs with several seeds. Labels are only read to score (``drills.score_scenario``).
Usage: ``PYTHONHASHSEED=0 .venv/bin/python tools/eval/robustness.py [preset] [seeds] [variants]``
(variants comma-separated, default all).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drills import ScenarioResult, score_scenario, summary, ts

VARIANTS = ("drop", "shift", "rename", "thin", "all", "inject")
INJECT_PER_DAY = 4.0
Spans = list[tuple[float, float]]
ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "scenarios"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _episodes(labels: dict[str, Any]) -> tuple[Spans, Spans]:
    crises = [(ts(c["start"]), ts(c["end"])) for c in labels["crises"]]
    benign = [(ts(b["start"]), ts(b["end"])) for b in labels["benign"]]
    return crises, benign


def _complaints() -> list[str]:
    """Texts seen only inside firestorm windows (the storm's complaints, not the chatter)."""
    inside: set[str] = set()
    outside: set[str] = set()
    for name in ("dev-hospital-firestorm", "dev-ambassador-firestorm"):
        d = ROOT / name
        if not d.is_dir():
            continue
        spans = _episodes(orjson.loads((d / "labels.json").read_bytes()))[0]
        for line in (d / "mentions.jsonl").read_bytes().splitlines():
            r = orjson.loads(line)
            t = ts(r["created_at"])
            (inside if any(a <= t <= b for a, b in spans) else outside).add(r["text"])
    return sorted(inside - outside)


def _inject(
    rows: list[dict[str, Any]], labels: dict[str, Any], rng: random.Random, busy: Spans
) -> list[dict[str, Any]]:
    texts = _complaints()
    t = ts(labels["span"]["start"])
    end = ts(labels["span"]["end"])
    added = []
    i = 0
    while texts:
        t += rng.expovariate(INJECT_PER_DAY / 86400.0)
        if t >= end:
            break
        if any(a <= t <= b for a, b in busy):
            continue
        i += 1
        added.append(
            {
                "id": f"x:inj{i:06d}",
                "source": "x",
                "created_at": _iso(t),
                "text": rng.choice(texts),
                "lang": "de",
                "author": {
                    "id": f"inj{rng.randrange(10**12)}",
                    "handle": f"@inj{i}",
                    "followers": 100,
                },
                "url": f"https://example.invalid/x/inj{i}",
                "in_reply_to": None,
                "metrics": {"likes": 0, "reposts": 0, "replies": 0},
            }
        )
    return sorted(rows + added, key=lambda r: ts(r["created_at"]))


def perturb(src: Path, dst: Path, variant: str, seed: int) -> None:
    """Write a perturbed copy of scenario ``src`` to ``dst``."""
    rng = random.Random(f"{src.name}:{variant}:{seed}")
    labels = orjson.loads((src / "labels.json").read_bytes())
    rows = [orjson.loads(line) for line in (src / "mentions.jsonl").read_bytes().splitlines()]
    crises, benign = _episodes(labels)
    kinds = {"drop", "shift", "rename", "thin"} if variant == "all" else {variant}

    def inside(t: float, spans: list[tuple[float, float]]) -> bool:
        return any(a <= t <= b for a, b in spans)

    if variant == "inject":
        rows = _inject(rows, labels, rng, crises + benign)
    out = []
    for r in rows:
        t = ts(r["created_at"])
        if "drop" in kinds and not inside(t, crises + benign) and rng.random() < 0.25:
            continue
        if "thin" in kinds and inside(t, crises) and rng.random() < 0.25:
            continue
        out.append(r)
    if "rename" in kinds:
        names: dict[str, str] = {}
        for r in out:
            a = r["author"]
            if a["id"] not in names:
                names[a["id"]] = f"r{rng.randrange(10**12):012d}"
            a["id"] = new = names[a["id"]]
            a["handle"] = "@" + new
    if "shift" in kinds:
        delta = rng.uniform(-6 * 3600, 6 * 3600)
        for r in out:
            r["created_at"] = _iso(ts(r["created_at"]) + delta)
        for group in (labels["crises"], labels["benign"], [labels["span"]]):
            for item in group:
                for k in ("start", "peak", "end"):
                    if k in item:
                        item[k] = _iso(ts(item[k]) + delta)
    dst.mkdir(parents=True)
    (dst / "targets.json").write_bytes((src / "targets.json").read_bytes())
    (dst / "labels.json").write_bytes(orjson.dumps(labels))
    (dst / "mentions.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in out) + b"\n")


def run(
    sensitivity: str = "normal", seeds: int = 3, variants: tuple[str, ...] = VARIANTS
) -> dict[str, Any]:
    from stormwatch_cli.replay import replay

    per_variant: dict[str, list[ScenarioResult]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            results = per_variant.setdefault(variant, [])
            for seed in range(seeds):
                for src in sorted(p for p in ROOT.iterdir() if p.is_dir()):
                    dst = Path(tmp) / f"{variant}-{seed}" / src.name
                    perturb(src, dst, variant, seed)
                    labels = orjson.loads((dst / "labels.json").read_bytes())
                    report = replay(dst, sensitivity=sensitivity)
                    results.append(score_scenario(f"{src.name}/{seed}", labels, report["alerts"]))
    out: dict[str, Any] = {}
    for variant, results in per_variant.items():
        s = summary(results)
        leads = {
            f"{c.scenario}:{c.target}": round(c.lead_min, 1) if c.lead_min is not None else None
            for r in results
            for c in r.crises
            if c.kind == "firestorm"
        }
        fire = [v for v in leads.values() if v is not None]
        s["firestorm_leads"] = leads
        s["median_firestorm_lead_min"] = round(statistics.median(fire), 1) if fire else None
        s["false_page_list"] = [(r.name, p) for r in results for p in r.false_pages]
        out[variant] = s
    return out


if __name__ == "__main__":
    sens = sys.argv[1] if len(sys.argv) > 1 else "normal"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    chosen = tuple(sys.argv[3].split(",")) if len(sys.argv) > 3 else VARIANTS
    res = run(sens, n, chosen)
    for variant, s in res.items():
        print(
            f"{variant:7s} detected {s['detected']}/{s['crises']}  median firestorm lead "
            f"{s['median_firestorm_lead_min']} min  false pages {s['false_pages']}  "
            f"watch/week {s['watch_per_week']:.2f}"
        )
        print("        leads", s["firestorm_leads"])
        if s["false_page_list"]:
            print("        FALSE", s["false_page_list"])
