"""The compiled detector (mypyc, ``tools/build_native.py``) against its own sources.

The compiled build is the same sources turned into C, so it must give the same results bit
for bit; these tests check that it does, and that a development setup really uses it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stormwatch_alerting import domain

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT.parent / "shared" / "scenarios"


def _require_build() -> None:
    """The comparisons need the compiled build; ``make setup`` makes it (a C compiler is part
    of the development setup, as Java is for the broker)."""
    check = subprocess.run(
        [sys.executable, "tools/build_native.py", "--check"], cwd=ROOT, capture_output=True
    )
    assert check.returncode == 0, (
        "the compiled detector is missing or older than its sources: run `make setup` "
        f"(needs a C compiler: {shutil.which(os.environ.get('CC', 'cc')) or 'none found'})"
    )


def _run(args: list[str], pure: bool) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "STORMWATCH_PURE_PYTHON"}
    if pure:
        env["STORMWATCH_PURE_PYTHON"] = "1"
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, check=True, timeout=300)


def test_setup_built_the_compiled_detector_for_these_sources_and_it_is_in_use() -> None:
    _require_build()
    if os.environ.get("STORMWATCH_PURE_PYTHON", "") in ("", "0"):
        from stormwatch_alerting.domain import baseline, detector

        assert domain.NATIVE
        assert not detector.__file__.endswith(".py")
        assert not baseline.__file__.endswith(".py")


def test_the_pure_python_switch_loads_the_sources() -> None:
    out = _run(
        [
            sys.executable,
            "-c",
            "import stormwatch_alerting.domain.detector as d; print(d.__file__)",
        ],
        pure=True,
    )
    assert out.stdout.decode().strip().endswith("detector.py")


def test_compiled_and_interpreted_detector_agree_bit_for_bit() -> None:
    """Transitions with their evidence, statuses and full snapshots of three presets over
    nine days of forty targets with storms, and a restart from snapshots."""
    _require_build()
    args = [sys.executable, "-m", "tests.support.native_workload"]
    compiled, interpreted = _run(args, pure=False), _run(args, pure=True)
    a, b = json.loads(compiled.stdout), json.loads(interpreted.stdout)
    assert (a["native"], b["native"]) == (True, False)
    assert a["workloads"]["normal"]["transitions"], "the workload must raise alerts"
    assert a["workloads"] == b["workloads"]


@pytest.mark.parametrize("drill", sorted(p.name for p in SCENARIOS.glob("*") if p.is_dir()))
def test_compiled_and_interpreted_replay_give_the_same_drill_report(
    drill: str, tmp_path: Path
) -> None:
    _require_build()
    reports = []
    for pure in (False, True):
        out = tmp_path / f"{pure}.json"
        _run(
            [
                str(ROOT / ".venv/bin/stormwatch"),
                "replay",
                str(SCENARIOS / drill),
                "--report",
                str(out),
            ],
            pure=pure,
        )
        report = json.loads(out.read_text())
        report.pop("seconds", None)  # the run time, the one figure allowed to differ
        reports.append(report)
    assert reports[0] == reports[1]
