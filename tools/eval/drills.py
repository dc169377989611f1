"""Drill evaluation: replay every scenario through the real path and score the alerts.

The replay (``stormwatch_cli.replay.replay``) runs the real listener matching, the real
sentiment model and the detector in one process on event time, so the figures here are the
ones the live pipeline would produce. Labels (``labels.json``) are read only to score.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

LEVEL_RANK = {"watch": 1, "warning": 2, "critical": 3}
WEEK_S = 7 * 24 * 3600.0


def ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


@dataclass
class CrisisResult:
    scenario: str
    target: str
    kind: str
    min_level: str
    detected: bool
    level: str | None
    raised_at: str | None
    lead_min: float | None
    """Minutes from the first alert at ``min_level`` or higher to the peak (positive = early)."""
    first_alert_min: float | None
    """Minutes from the first alert of any level for the target to the peak."""


@dataclass
class ScenarioResult:
    name: str
    weeks: float
    crises: list[CrisisResult] = field(default_factory=list)
    false_pages: list[dict[str, Any]] = field(default_factory=list)
    spillover_pages: list[dict[str, Any]] = field(default_factory=list)
    watch_outside: list[dict[str, Any]] = field(default_factory=list)
    benign_pages: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


def _steps(alert: dict[str, Any]) -> list[tuple[str, float]]:
    return [(s["level"], ts(s["at"])) for s in alert["levels"]]


def score_scenario(
    name: str, labels: dict[str, Any], alerts: list[dict[str, Any]]
) -> ScenarioResult:
    span = labels["span"]
    res = ScenarioResult(name, (ts(span["end"]) - ts(span["start"])) / WEEK_S, alerts=alerts)
    crises = labels["crises"]
    for c in crises:
        start, peak, end = ts(c["start"]), ts(c["peak"]), ts(c["end"])
        need = LEVEL_RANK[c["min_level"]]
        first_any: float | None = None
        first_ok: tuple[float, str] | None = None
        best: str | None = None
        for a in alerts:
            if a["target"] != c["target"]:
                continue
            for lvl, at in _steps(a):
                if not (start <= at <= end):
                    continue
                first_any = at if first_any is None else min(first_any, at)
                if best is None or LEVEL_RANK[lvl] > LEVEL_RANK[best]:
                    best = lvl
                if LEVEL_RANK[lvl] >= need and (first_ok is None or at < first_ok[0]):
                    first_ok = (at, lvl)
        res.crises.append(
            CrisisResult(
                scenario=name,
                target=c["target"],
                kind=c["kind"],
                min_level=c["min_level"],
                detected=first_ok is not None and first_ok[0] <= peak,
                level=best,
                raised_at=datetime.fromtimestamp(first_ok[0], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if first_ok
                else None,
                lead_min=(peak - first_ok[0]) / 60.0 if first_ok else None,
                first_alert_min=(peak - first_any) / 60.0 if first_any is not None else None,
            )
        )
    for a in alerts:
        for lvl, at in _steps(a):
            own = any(
                c["target"] == a["target"] and ts(c["start"]) <= at <= ts(c["end"]) for c in crises
            )
            if own:
                continue
            other = any(ts(c["start"]) <= at <= ts(c["end"]) for c in crises)
            item = {
                "target": a["target"],
                "level": lvl,
                "at": datetime.utcfromtimestamp(at).isoformat() + "Z",
            }
            benign = [
                b["kind"]
                for b in labels["benign"]
                if b["target"] == a["target"] and ts(b["start"]) <= at <= ts(b["end"])
            ]
            if benign:
                item["benign"] = benign[0]
            if LEVEL_RANK[lvl] >= 2:
                if other:
                    res.spillover_pages.append(item)
                else:
                    res.false_pages.append(item)
                if benign:
                    res.benign_pages.append(item)
            elif lvl == "watch" and (lvl, at) == _steps(a)[0]:
                res.watch_outside.append(item)
    return res


def dev_replay(d: Path, sensitivity: str) -> dict[str, Any]:
    """DEVELOPMENT FALLBACK, not for published figures: used only while the real replay
    cannot be imported (the sentiment service is mid-change). It uses the real default
    sentiment model and the real watch-list matcher, but no topic tagger and no event
    adapters; ``run_drills(..., allow_dev=False)`` refuses it."""
    from stormwatch_alerting.domain.detector import Detector, preset
    from stormwatch_alerting.domain.types import Observation
    from stormwatch_sentiment.engines import load_default
    from stormwatch_shared.scenario import ReadProblems, iter_mentions, open_scenario
    from stormwatch_shared.targets import TargetMatcher

    sc = open_scenario(d)
    matcher = TargetMatcher(sc.targets)
    kinds = {t.id: t.kind for t in sc.targets}
    mentions = sorted(iter_mentions(sc.mentions_path, ReadProblems()), key=lambda m: m.created_at)
    preds = load_default().predict([m.text for m in mentions])
    det = Detector(preset(sensitivity))
    alerts: dict[str, dict[str, Any]] = {}
    for m, p in zip(mentions, preds, strict=True):
        for tid in matcher.match(m.text):
            obs = Observation(
                tid,
                m.created_at.timestamp(),
                m.id,
                m.author.id,
                m.author.followers,
                p.scores["negative"],
                p.label,
                m.in_reply_to,
                (),
                m.url,
                m.text,
                kinds[tid],
            )
            for t in det.observe(obs):
                at = datetime.utcfromtimestamp(t.at).isoformat() + "Z"
                if t.kind == "raised":
                    alerts[t.alert_id] = {
                        "target": tid,
                        "level": t.level,
                        "raised_at": at,
                        "levels": [{"level": t.level, "at": at}],
                        "resolved_at": None,
                        "evidence": t.evidence,
                    }
                elif t.kind == "escalated":
                    alerts[t.alert_id]["levels"].append({"level": t.level, "at": at})
                    alerts[t.alert_id]["level"] = t.level
                else:
                    alerts[t.alert_id]["resolved_at"] = at
    return {"alerts": list(alerts.values()), "model_id": "default (dev fallback)"}


def run_drills(
    scenarios_dir: Path, sensitivity: str = "normal", *, allow_dev: bool = True
) -> list[ScenarioResult]:
    try:
        from stormwatch_cli.replay import replay
    except ImportError:
        if not allow_dev:
            raise
        replay = None  # type: ignore[assignment]
        print("WARNING: real replay not importable; using the development fallback")

    out = []
    for d in sorted(p for p in scenarios_dir.iterdir() if p.is_dir()):
        labels = orjson.loads((d / "labels.json").read_bytes())
        report = replay(d, sensitivity=sensitivity) if replay else dev_replay(d, sensitivity)
        out.append(score_scenario(d.name, labels, report["alerts"]))
    return out


def summary(results: list[ScenarioResult]) -> dict[str, Any]:
    crises = [c for r in results for c in r.crises]
    fire = [
        c.lead_min
        for c in crises
        if c.kind == "firestorm" and c.detected and c.lead_min is not None
    ]
    weeks = sum(r.weeks for r in results)
    return {
        "crises": len(crises),
        "detected": sum(c.detected for c in crises),
        "median_firestorm_lead_min": statistics.median(fire) if fire else None,
        "false_pages": sum(len(r.false_pages) for r in results),
        "spillover_pages": sum(len(r.spillover_pages) for r in results),
        "watch_outside": sum(len(r.watch_outside) for r in results),
        "watch_per_week": sum(len(r.watch_outside) for r in results) / weeks if weeks else 0.0,
        "weeks": weeks,
    }


if __name__ == "__main__":
    import sys

    sens = sys.argv[1] if len(sys.argv) > 1 else "normal"
    rs = run_drills(Path(__file__).resolve().parents[2].parent / "shared" / "scenarios", sens)
    for r in rs:
        print("==", r.name)
        for c in r.crises:
            print("  crisis", c)
        for a in r.alerts:
            print(
                "  alert",
                a["target"],
                a["raised_at"],
                [(s["level"], s["at"][5:16]) for s in a["levels"]],
                a["resolved_at"],
                a["evidence"]["score"],
                a["evidence"]["negative_share"],
                a["evidence"]["negative_share_usual"],
                {k for k, v in a["evidence"]["gates"].items() if v},
            )
        print("  false", r.false_pages, "spill", r.spillover_pages, "watch", r.watch_outside)
    print(summary(rs))
