"""The replay/evaluation report: alerts as the crisis team would have seen them.

Built from alert *events*, so the in-process replay and the Kafka pipeline produce it the
same way and can be compared field by field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stormwatch_shared.events import (
    CrisisAlertEscalated,
    CrisisAlertRaised,
    CrisisAlertResolved,
    level_rank,
)

AlertEvent = CrisisAlertRaised | CrisisAlertEscalated | CrisisAlertResolved


def iso(ts: datetime) -> str:
    return (
        ts.strftime("%Y-%m-%dT%H:%M:%SZ")
        if ts.microsecond == 0
        else ts.isoformat().replace("+00:00", "Z")
    )


class AlertReport:
    def __init__(self) -> None:
        self._alerts: dict[str, dict[str, Any]] = {}

    def add(self, event: AlertEvent) -> None:
        entry = self._alerts.get(event.alert_id)
        if isinstance(event, CrisisAlertRaised):
            if entry is None:
                self._alerts[event.alert_id] = {
                    "alert_id": event.alert_id,
                    "target": event.target_id,
                    "level": event.level,
                    "raised_at": iso(event.occurred_at),
                    "levels": [{"level": event.level, "at": iso(event.occurred_at)}],
                    "resolved_at": None,
                    "evidence": event.evidence.model_dump(mode="json"),
                }
            return
        if entry is None:
            return
        if isinstance(event, CrisisAlertEscalated):
            step = {"level": event.level, "at": iso(event.occurred_at)}
            if step not in entry["levels"]:
                entry["levels"].append(step)
            if level_rank(event.level) > level_rank(entry["level"]):
                entry["level"] = event.level
                entry["evidence"] = event.evidence.model_dump(mode="json")
        else:
            entry["resolved_at"] = iso(event.occurred_at)

    def alerts(self) -> list[dict[str, Any]]:
        return sorted(self._alerts.values(), key=lambda a: (a["raised_at"], a["target"]))

    def comparable(self) -> list[dict[str, Any]]:
        """The fields two runs of the same scenario must agree on."""
        return [
            {k: a[k] for k in ("target", "level", "raised_at", "levels", "resolved_at")}
            for a in self.alerts()
        ]
