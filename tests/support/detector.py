"""Running the pure detector over a list of observations, for the table-driven unit tests."""

from __future__ import annotations

from stormwatch_alerting.domain.detector import Detector, DetectorConfig
from stormwatch_alerting.domain.types import Observation, Transition

DAY = 86_400.0


def run(obs: list[Observation], config: DetectorConfig | None = None) -> list[Transition]:
    """Every transition, in event-time order, plus a day of advancing so open alerts resolve."""
    det = Detector(config)
    out: list[Transition] = []
    for o in sorted(obs, key=lambda o: o.at):
        out.extend(det.observe(o))
    out.extend(det.advance_all(max(o.at for o in obs) + DAY))
    return out
