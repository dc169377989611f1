"""Dashboards as code: writes deploy/grafana/dashboards/*.json from plain dicts.

    python deploy/grafana/generate.py           # regenerate the JSON files
    python deploy/grafana/generate.py --check   # exit 1 if the committed files are stale

Plain dicts rather than grafanalib: no extra dependency, and the JSON Grafana stores is
exactly what this file says. Titles are German first, English after the slash. The
datasource uid ``prometheus`` is fixed by provisioning/datasources/prometheus.yml.

Every expression here is evaluated against a real Prometheus during a drill in
tests/integration/test_observability_prometheus.py, so a renamed metric breaks a test, not
the crisis team's screen.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DS = {"type": "prometheus", "uid": "prometheus"}
T = 'target=~"$target"'

LEVEL_MAPPING = [
    {
        "type": "value",
        "options": {
            "0": {"text": "Ruhig / calm", "color": "green", "index": 0},
            "1": {"text": "Beobachten / watch", "color": "yellow", "index": 1},
            "2": {"text": "Warnung / warning", "color": "orange", "index": 2},
            "3": {"text": "Kritisch / critical", "color": "red", "index": 3},
        },
    }
]
UP_MAPPING = [
    {
        "type": "value",
        "options": {
            "0": {"text": "AUSGEFALLEN / down", "color": "red", "index": 0},
            "1": {"text": "läuft / up", "color": "green", "index": 1},
        },
    }
]


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def target(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False
) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": DS,
        "expr": expr,
        "legendFormat": legend,
        "instant": instant,
        "range": not instant,
        "format": "table" if table else "time_series",
    }


class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping to new rows."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def panel(
        self,
        kind: str,
        title: str,
        targets: list[dict[str, Any]],
        *,
        w: int = 12,
        h: int = 8,
        description: str = "",
        unit: str = "short",
        mappings: list[dict[str, Any]] | None = None,
        steps: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        custom: dict[str, Any] | None = None,
        overrides: list[dict[str, Any]] | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            "unit": unit,
            "mappings": mappings or [],
            "thresholds": steps or thresholds((None, "green")),
            "custom": custom or {},
        }
        if min_value is not None:
            defaults["min"] = min_value
        if max_value is not None:
            defaults["max"] = max_value
        panel = {
            "id": self.next_id,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self.place(w, h),
            "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or {},
        }
        self.next_id += 1
        return panel


def stat_options(text_mode: str = "value_and_name") -> dict[str, Any]:
    return {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "none",
        "textMode": text_mode,
        "justifyMode": "auto",
        "orientation": "auto",
    }


def ts_options() -> dict[str, Any]:
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def ts_custom(fill: int = 10, stack: bool = False) -> dict[str, Any]:
    return {
        "drawStyle": "line",
        "lineWidth": 2,
        "fillOpacity": fill,
        "showPoints": "never",
        "spanNulls": True,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[dict[str, Any]],
    *,
    variables: list[dict[str, Any]] | None = None,
    annotations: list[dict[str, Any]] | None = None,
    time_from: str = "now-24h",
) -> dict[str, Any]:
    builtin = {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["stormwatch"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "annotations": {"list": [builtin, *(annotations or [])]},
        "templating": {"list": variables or []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["stormwatch"],
                "asDropdown": False,
                "title": "stormwatch",
            }
        ],
        "panels": panels,
    }


def target_variable() -> dict[str, Any]:
    return {
        "name": "target",
        "label": "Ziel / target",
        "type": "query",
        "datasource": DS,
        "query": {
            "query": "label_values(stormwatch_target_crisis_level, target)",
            "refId": "target",
        },
        "definition": "label_values(stormwatch_target_crisis_level, target)",
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
    }


def crisis_room() -> dict[str, Any]:
    lay = Layout()
    panels = [
        lay.panel(
            "stat",
            "Krisenstufe / Crisis level",
            [target(f"max by (target) (stormwatch_target_crisis_level{{{T}}})", "{{target}}")],
            w=8,
            h=5,
            description="Offener Alarm je Ziel. / Open alert per target.",
            mappings=LEVEL_MAPPING,
            steps=thresholds((None, "green"), (1, "yellow"), (2, "orange"), (3, "red")),
            options=stat_options(),
        ),
        lay.panel(
            "stat",
            "Krisenscore / Crisis score",
            [target(f"max by (target) (stormwatch_target_crisis_score{{{T}}})", "{{target}}")],
            w=6,
            h=5,
            description="Evidenz des Detektors (-log10 p); ab 5 Beobachten, 7 Warnung, 12 "
            "kritisch (Voreinstellung normal). / Detector evidence (-log10 p).",
            unit="none",
            steps=thresholds((None, "green"), (5, "yellow"), (7, "orange"), (12, "red")),
            options=stat_options(),
        ),
        lay.panel(
            "stat",
            "Negativanteil (1 h) / Negative share",
            [target(f"max by (target) (stormwatch_target_negative_ratio{{{T}}})", "{{target}}")],
            w=6,
            h=5,
            description="Anteil negativer Erwähnungen in der letzten Stunde (Ereigniszeit). "
            "/ Share of negative mentions over the last hour of event time.",
            unit="percentunit",
            steps=thresholds((None, "green"), (0.3, "yellow"), (0.5, "red")),
            options=stat_options(),
        ),
        lay.panel(
            "stat",
            "Offene Alarme / Open alerts",
            [target(f"sum(stormwatch_target_crisis_level{{{T}}} > bool 0)", "offen / open")],
            w=4,
            h=5,
            steps=thresholds((None, "green"), (1, "red")),
            options=stat_options("value"),
        ),
        lay.panel(
            "timeseries",
            "Volumen gegen erwartetes Band / Volume against expected band",
            [
                target(
                    f"stormwatch_target_observed_authors{{{T}}}",
                    "{{target}} beobachtet / observed",
                ),
                target(
                    f"stormwatch_target_expected_authors{{{T}}}",
                    "{{target}} erwartet / expected",
                    "B",
                ),
                target(
                    f"stormwatch_target_expected_authors{{{T}}}"
                    f" + 2 * sqrt(stormwatch_target_expected_authors{{{T}}})",
                    "{{target}} Band oben / upper",
                    "C",
                ),
                target(
                    f"clamp_min(stormwatch_target_expected_authors{{{T}}}"
                    f" - 2 * sqrt(stormwatch_target_expected_authors{{{T}}}), 0)",
                    "{{target}} Band unten / lower",
                    "D",
                ),
            ],
            w=24,
            h=9,
            description="Verschiedene Autor:innen je 5-Minuten-Fenster (Ereigniszeit) gegen "
            "die saisonale Erwartung des Detektors; Band = Erwartung ± 2·√Erwartung "
            "(Poisson-Näherung). Der Detektor zählt eine Person höchstens einmal in 3 h, "
            "in ruhigen Stunden liegt 'beobachtet' daher etwas über der Erwartung. / "
            "Distinct authors per 5-min event-time bucket against the detector's seasonal "
            "expectation; band = expected ± 2·sqrt(expected).",
            custom=ts_custom(fill=0),
            options=ts_options(),
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".*(Band|erwartet).*"},
                    "properties": [
                        {
                            "id": "custom.lineStyle",
                            "value": {"fill": "dash", "dash": [6, 4]},
                        },
                        {"id": "custom.lineWidth", "value": 1},
                    ],
                }
            ],
            min_value=0,
        ),
        lay.panel(
            "timeseries",
            "Negativanteil im Verlauf / Negative share over time",
            [target(f"stormwatch_target_negative_ratio{{{T}}}", "{{target}}")],
            unit="percentunit",
            custom=ts_custom(),
            options=ts_options(),
            min_value=0,
            max_value=1,
        ),
        lay.panel(
            "state-timeline",
            "Krisenstufe im Verlauf / Crisis level over time",
            [target(f"max by (target) (stormwatch_target_crisis_level{{{T}}})", "{{target}}")],
            mappings=LEVEL_MAPPING,
            steps=thresholds((None, "green"), (1, "yellow"), (2, "orange"), (3, "red")),
            options={
                "showValue": "never",
                "mergeValues": True,
                "rowHeight": 0.8,
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            },
        ),
        lay.panel(
            "bargauge",
            "Top-Themen im Zeitraum / Top topics in range",
            [
                target(
                    "topk(5, sum by (topic) "
                    f"(increase(stormwatch_mention_topics_total{{{T}}}[$__range])))",
                    "{{topic}}",
                    instant=True,
                )
            ],
            w=8,
            description="Krisenthemen der bewerteten Erwähnungen (Hygiene, Wartezeit, ...). "
            "/ Crisis topics tagged on scored mentions.",
            options={
                "orientation": "horizontal",
                "displayMode": "gradient",
                "showUnfilled": True,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            },
        ),
        lay.panel(
            "table",
            "Offene Alarme je Ziel / Open alerts per target",
            [
                target(
                    f"max by (target) (stormwatch_target_crisis_level{{{T}}})",
                    instant=True,
                    table=True,
                )
            ],
            w=8,
            mappings=LEVEL_MAPPING,
            custom={"cellOptions": {"type": "color-background"}},
            options={"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
        ),
        lay.panel(
            "bargauge",
            "Alarmereignisse im Zeitraum / Alert events in range",
            [
                target(
                    "sum by (event) "
                    f'(increase(stormwatch_alerts_total{{{T}, drill="false"}}[$__range]))',
                    "{{event}}",
                    instant=True,
                ),
                target(
                    "sum(increase(stormwatch_alerting_alerts_acknowledged_total"
                    '{drill="false"}[$__range])) or vector(0)',
                    "acknowledged",
                    "B",
                    instant=True,
                ),
            ],
            w=8,
            description="Ausgelöst, eskaliert, entwarnt je Ziel; bestätigt (alle Ziele, aus der "
            "Zustellung); ohne Übungen. / Raised, escalated, resolved per target; acknowledged "
            "(all targets, from delivery); drills excluded.",
            options={
                "orientation": "horizontal",
                "displayMode": "basic",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            },
        ),
        lay.panel(
            "timeseries",
            "Erwähnungen nach Stimmung / Mentions by sentiment",
            [
                target(
                    "sum by (sentiment) "
                    f"(rate(stormwatch_mentions_scored_total{{{T}}}[$__rate_interval])) * 60",
                    "{{sentiment}}",
                )
            ],
            unit="short",
            description="Bewertete Erwähnungen pro Minute (Verarbeitungszeit). / Scored "
            "mentions per minute (processing time).",
            custom=ts_custom(fill=30, stack=True),
            options=ts_options(),
            overrides=[
                {
                    "matcher": {"id": "byName", "options": name},
                    "properties": [
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": color}}
                    ],
                }
                for name, color in (
                    ("negative", "red"),
                    ("neutral", "blue"),
                    ("positive", "green"),
                )
            ],
        ),
        lay.panel(
            "timeseries",
            "Erwähnungen nach Quelle / Mentions by source",
            [
                target(
                    "sum by (source) "
                    f"(rate(stormwatch_mentions_scored_total{{{T}}}[$__rate_interval])) * 60",
                    "{{source}}",
                )
            ],
            description="Pro Minute. / Per minute.",
            custom=ts_custom(fill=30, stack=True),
            options=ts_options(),
        ),
    ]
    annotations = [
        {
            "name": "Alarme / Alerts",
            "datasource": DS,
            "enable": True,
            "iconColor": "red",
            "expr": "sum by (target, event, level, drill) "
            f"(increase(stormwatch_alerts_total{{{T}}}[2m])) > 0",
            "step": "60s",
            "titleFormat": "{{event}}: {{target}} ({{level}})",
            "textFormat": "Übung / drill: {{drill}}",
            "tagKeys": "target,event,level",
            "useValueForTime": False,
        }
    ]
    return dashboard(
        "stormwatch-krisenraum",
        "Krisenraum / Crisis room",
        "Lage je beobachtetem Ziel: Volumen gegen Erwartung, Negativanteil, Krisenstufe, "
        "Themen und offene Alarme. / Situation per watched target.",
        panels,
        variables=[target_variable()],
        annotations=annotations,
    )


def pipeline_health() -> dict[str, Any]:
    lay = Layout()
    jobs = 'job=~"stormwatch-.*"'
    panels = [
        lay.panel(
            "stat",
            "Dienste / Services",
            [target(f"up{{{jobs}}}", "{{job}}")],
            w=12,
            h=5,
            description="Kann Prometheus den Dienst abfragen? / Can Prometheus scrape it?",
            mappings=UP_MAPPING,
            steps=thresholds((None, "red"), (1, "green")),
            options=stat_options(),
        ),
        lay.panel(
            "stat",
            "Consumer-Lag gesamt / Total consumer lag",
            [target("sum(stormwatch_consumer_lag_messages)", "lag")],
            w=4,
            h=5,
            steps=thresholds((None, "green"), (500, "orange"), (5000, "red")),
            options=stat_options("value"),
        ),
        lay.panel(
            "stat",
            "Dead Letters (24 h)",
            [target("sum(increase(stormwatch_dead_letters_total[24h]))", "dlq")],
            w=4,
            h=5,
            steps=thresholds((None, "green"), (1, "orange")),
            options=stat_options("value"),
        ),
        lay.panel(
            "stat",
            "Fehlgeschlagene Benachrichtigungen (24 h) / Failed notifications",
            [
                target(
                    'sum(increase(stormwatch_alerting_notifications_total{outcome="failed"}[24h]))',
                    "failed",
                )
            ],
            w=4,
            h=5,
            steps=thresholds((None, "green"), (1, "red")),
            options=stat_options("value"),
        ),
        lay.panel(
            "timeseries",
            "Durchsatz / Throughput",
            [
                target(
                    "sum by (app_name, handler) "
                    "(rate(faststream_received_messages_total[$__rate_interval]))",
                    "{{app_name}} ← {{handler}}",
                ),
                target(
                    "sum by (app_name, destination) "
                    "(rate(faststream_published_messages_total[$__rate_interval]))",
                    "{{app_name}} → {{destination}}",
                    "B",
                ),
            ],
            unit="msg/s",
            description="Gelesene und geschriebene Nachrichten je Sekunde (FastStream). / "
            "Messages consumed and published per second.",
            custom=ts_custom(),
            options=ts_options(),
        ),
        lay.panel(
            "timeseries",
            "Consumer-Lag / Consumer lag",
            [target("stormwatch_consumer_lag_messages", "{{group}} @ {{topic}}")],
            description="Noch nicht verarbeitete Nachrichten je Consumer-Gruppe, vom Broker "
            "gelesen. / Unprocessed messages per consumer group, read from the broker.",
            custom=ts_custom(),
            options=ts_options(),
            min_value=0,
        ),
        lay.panel(
            "timeseries",
            "Event-Time-Verzug / Event-time lag",
            [target("stormwatch_event_lag_seconds", "{{service}}")],
            unit="s",
            description="Jetzt minus Ereigniszeit der neuesten verarbeiteten Erwähnung. Bei "
            "Übungen mit alten Daten naturgemäß groß. / Now minus event time of the newest "
            "processed mention (large for drills replaying old data).",
            custom=ts_custom(fill=0),
            options=ts_options(),
        ),
        lay.panel(
            "timeseries",
            "Quellen-Frische / Source freshness",
            [
                target(
                    "time() - max by (source) (stormwatch_source_last_scored_timestamp_seconds)",
                    "{{source}}",
                )
            ],
            unit="s",
            description="Zeit seit der letzten bewerteten Erwähnung je Quelle; ab 6 h alarmiert "
            "StormwatchSourceSilent. / Time since the last scored mention per source.",
            steps=thresholds((None, "green"), (3600, "orange"), (21600, "red")),
            custom={**ts_custom(fill=0), "thresholdsStyle": {"mode": "line"}},
            options=ts_options(),
        ),
        lay.panel(
            "timeseries",
            "Verarbeitungsfehler / Handler errors",
            [
                target(
                    "sum by (app_name, handler) (rate("
                    "faststream_received_processed_messages_exceptions_total[$__rate_interval]"
                    ")) or on() vector(0)",
                    "{{app_name}} {{handler}}",
                )
            ],
            unit="ops",
            description="Ausnahmen in Handlern (Nachricht wird erneut zugestellt). / "
            "Exceptions in handlers (the message is redelivered).",
            custom=ts_custom(),
            options=ts_options(),
        ),
        lay.panel(
            "timeseries",
            "Dead Letters",
            [
                target(
                    "sum by (service, topic) "
                    "(increase(stormwatch_dead_letters_total[$__rate_interval]))",
                    "{{service}} {{topic}}",
                )
            ],
            description="Abgewiesene Nachrichten (nach <topic>.dlq). / Refused messages.",
            custom=ts_custom(),
            options=ts_options(),
        ),
        lay.panel(
            "timeseries",
            "Benachrichtigungen / Notifications",
            [
                target(
                    "sum by (channel, outcome) "
                    "(increase(stormwatch_alerting_notifications_total[$__rate_interval]))",
                    "{{channel}} {{outcome}}",
                )
            ],
            description="Ergebnisse je Kanal: gesendet, fehlgeschlagen (nach allen "
            "Wiederholungen), unterdrückt, gebündelt, ... / Outcomes per channel: sent, failed "
            "after all retries, suppressed, bundled, ...",
            custom=ts_custom(),
            options=ts_options(),
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".*failed"},
                    "properties": [
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}
                    ],
                }
            ],
        ),
        lay.panel(
            "timeseries",
            "Inferenz-Latenz je Batch / Inference latency per batch",
            [
                target(
                    "histogram_quantile(0.5, sum by (le, engine) "
                    "(rate(stormwatch_inference_duration_seconds_bucket[$__rate_interval])))",
                    "p50 {{engine}}",
                ),
                target(
                    "histogram_quantile(0.95, sum by (le, engine) "
                    "(rate(stormwatch_inference_duration_seconds_bucket[$__rate_interval])))",
                    "p95 {{engine}}",
                    "B",
                ),
            ],
            unit="s",
            custom=ts_custom(fill=0),
            options=ts_options(),
        ),
        lay.panel(
            "timeseries",
            "Batchgröße / Batch size",
            [
                target(
                    "sum by (service) (rate(stormwatch_batch_messages_sum[$__rate_interval])) "
                    "/ sum by (service) (rate(stormwatch_batch_messages_count[$__rate_interval]))",
                    "{{service}}",
                )
            ],
            description="Mittlere Nachrichten je Micro-Batch. / Mean messages per batch.",
            custom=ts_custom(fill=0),
            options=ts_options(),
        ),
        lay.panel(
            "table",
            "Versionen und Modell / Versions and model",
            [
                target("stormwatch_build_info", instant=True, table=True),
                target("stormwatch_model_info", "", "B", instant=True, table=True),
            ],
            w=24,
            h=6,
            options={"showHeader": True},
        ),
    ]
    return dashboard(
        "stormwatch-pipeline",
        "Pipeline-Gesundheit / Pipeline health",
        "Läuft die Kette Quelle → Sentiment → Alarm → Benachrichtigung? / Is the chain "
        "source → sentiment → alert → notification healthy?",
        panels,
        time_from="now-6h",
    )


DASHBOARDS = {"krisenraum.json": crisis_room, "pipeline.json": pipeline_health}


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        path = OUT / name
        text = render(build())
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(path)
    if stale:
        print(f"stale dashboards (run python deploy/grafana/generate.py): {stale}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
