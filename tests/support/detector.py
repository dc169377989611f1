"""Running the pure detector over a list of observations, for the table-driven unit tests."""

from __future__ import annotations

import json
import types
from pathlib import Path

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


def run_with_restore(obs: list[Observation], k: int, target_id: str) -> list[Transition]:
    """``run`` of ``obs`` (sorted), but the first ``k`` go to one detector and the rest to a
    second one restored from the first's JSON snapshot of ``target_id``: a restart at ``k``."""
    first = Detector()
    out: list[Transition] = []
    for o in obs[:k]:
        out.extend(first.observe(o))
    second = Detector()
    second.restore(target_id, json.loads(json.dumps(first.snapshot(target_id))))
    for o in obs[k:]:
        out.extend(second.observe(o))
    out.extend(second.advance_all(obs[-1].at + DAY))
    return out


def interpreted_detector_module() -> types.ModuleType:
    """``stormwatch_alerting.domain.detector`` from its source, whether or not the compiled
    build is in use: for the tests that wrap a private method of one instance, which a
    compiled class does not allow. Everything it imports is the module in use."""
    import importlib.util
    import sys

    from stormwatch_alerting import domain

    name = "stormwatch_alerting.domain._interpreted_detector"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(domain.__file__).with_name("detector.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
