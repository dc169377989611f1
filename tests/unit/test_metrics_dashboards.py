"""The committed dashboards are what the generator writes, and they only name real metrics."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from stormwatch_shared import metrics

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "deploy" / "grafana" / "generate.py"
RULES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))

# FastStream's KafkaPrometheusMiddleware (faststream/prometheus/container.py), prefix faststream.
FASTSTREAM = {
    f"faststream_{n}"
    for n in (
        "received_messages_total",
        "received_messages_size_bytes",
        "received_messages_in_process",
        "received_processed_messages_total",
        "received_processed_messages_duration_seconds",
        "received_processed_messages_exceptions_total",
        "published_messages_total",
        "published_messages_duration_seconds",
        "published_messages_exceptions_total",
    )
}


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stormwatch_grafana_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = load_generator()


def known_series() -> set[str]:
    from stormwatch_alerting.delivery import metrics as delivery_metrics
    from stormwatch_listener import metrics as listener_metrics

    names = {"up"}
    modules = (metrics, delivery_metrics, listener_metrics)
    for value in (v for module in modules for v in vars(module).values()):
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                base = family.name
                names |= {base, f"{base}_total", f"{base}_info"}
                names |= {f"{base}_{s}" for s in ("bucket", "sum", "count")}
    names |= {f.name for f in metrics._FIGURES_COLLECTOR.describe()}  # served at scrape time
    for name in FASTSTREAM:
        names.add(name)
        names |= {f"{name}_{s}" for s in ("bucket", "sum", "count")}
    return names


def expressions() -> list[tuple[str, str]]:
    out = []
    for name, build in GEN.DASHBOARDS.items():
        board = build()
        for panel in board["panels"]:
            out.extend((f"{name}: {panel['title']}", t["expr"]) for t in panel["targets"])
        out.extend(
            (f"{name}: annotation", a["expr"]) for a in board["annotations"]["list"] if "expr" in a
        )
        out.extend((f"{name}: variable", v["definition"]) for v in board["templating"]["list"])
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            out.extend(
                (f"rule {r['alert']}", r["expr"])
                for r in group["rules"]
                if r["expr"] != "vector(1)"  # the heartbeat watches nothing by design
            )
    return out


@pytest.mark.parametrize("name", sorted(GEN.DASHBOARDS))
def test_committed_json_is_up_to_date(name: str) -> None:
    committed = (REPO / "deploy" / "grafana" / "dashboards" / name).read_text(encoding="utf-8")
    assert committed == GEN.render(GEN.DASHBOARDS[name]()), "run: python deploy/grafana/generate.py"


@pytest.mark.parametrize(("where", "expr"), expressions())
def test_queries_name_only_metrics_that_exist(where: str, expr: str) -> None:
    series = set(
        re.findall(r"\b((?:stormwatch|faststream)_[a-z0-9_]+|up)\b(?=\s*[{\[),]|\s|$)", expr)
    )
    assert series, f"{where}: no metric found in {expr}"
    unknown = series - known_series()
    assert not unknown, f"{where}: unknown metrics {unknown}"


@pytest.mark.parametrize("name", sorted(GEN.DASHBOARDS))
def test_layout_and_titles(name: str) -> None:
    board: dict[str, Any] = GEN.DASHBOARDS[name]()
    assert " / " in board["title"], "German first, English after the slash"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])


def test_crisis_room_has_what_the_crisis_team_asked_for() -> None:
    board = GEN.DASHBOARDS["krisenraum.json"]()
    text = json.dumps(board)
    for metric in (
        "stormwatch_target_expected_authors",
        "stormwatch_target_observed_authors",
        "stormwatch_target_negative_ratio",
        "stormwatch_target_crisis_level",
        "stormwatch_mention_topics_total",
    ):
        assert metric in text
    assert [v["name"] for v in board["templating"]["list"]] == ["target"]
    assert any("stormwatch_alerts_total" in a.get("expr", "") for a in board["annotations"]["list"])


def test_provisioned_datasource_matches_the_dashboards() -> None:
    ds = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert [d["uid"] for d in ds["datasources"]] == ["prometheus"]
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/stormwatch.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_rule_runbooks_point_at_existing_sections() -> None:
    doc = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    anchors = {github_anchor(line.lstrip("#")) for line in doc.splitlines() if line.startswith("#")}
    runbooks = [
        rule["annotations"]["runbook"]
        for path in RULES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "runbook" in rule.get("annotations", {})
    ]
    assert len(runbooks) >= 4
    for runbook in runbooks:
        page, _, anchor = runbook.partition("#")
        assert page == "docs/operations.md" and anchor in anchors, runbook
