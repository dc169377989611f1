"""Compile the hot paths: the detector's modules with mypyc (see
``stormwatch_alerting.domain``) and the default sentiment model's featurizer from C (see
``stormwatch_sentiment.engines.native``).

Usage: ``.venv/bin/python tools/build_native.py [--force] [--check]``; ``make setup`` runs
it. Needs a C compiler (gcc or clang) and the dev dependencies (mypy, setuptools). Without
them the build says so and exits 0: the services then run the same computations in plain
Python and numpy, only slower. ``--check`` exits 1 unless both builds of the current sources
are present, for CI.

The detector build takes about 20 s on two cores and lands in
``services/alerting/src/stormwatch_alerting/domain/_native/<key>/``, the featurizer (1 s) in
``services/sentiment/src/stormwatch_sentiment/engines/_native/<key>/``; older keys are
removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "services" / "alerting" / "src"
SENTIMENT_SRC = ROOT / "services" / "sentiment" / "src"
C_FLAGS = ("-O2", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
"""IEEE floats kept exact: the library must give numpy's sums bit for bit."""

# The setup script runs in its own process with the sources' directory as working
# directory, so mypyc names the modules by their package path (stormwatch_alerting.domain.x).
_SETUP = textwrap.dedent(
    """
    import sys
    from setuptools import setup
    from mypyc.build import mypycify

    sources, target = sys.argv[1].split(","), sys.argv[2]
    sys.argv = [sys.argv[0], "build_ext", "--build-lib", sys.argv[3], "--build-temp", target]
    setup(
        name="stormwatch-alerting-native",
        ext_modules=mypycify(sources, opt_level="3", target_dir=target),
        script_args=sys.argv[1:],
    )
    """
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Kompiliert Detektor (mypyc) und Sentiment-Merkmale (C) / compile the detector "
            "with mypyc and the sentiment featurizer from C."
        ),
        epilog="Beispiel / example: .venv/bin/python tools/build_native.py --check",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    parser.add_argument(
        "--check", action="store_true", help="only check: exit 1 unless the builds are current"
    )
    args = parser.parse_args(argv)
    os.environ["STORMWATCH_PURE_PYTHON"] = "1"  # the keys are computed, nothing is loaded
    sys.path.insert(0, str(SRC))
    sys.path.insert(0, str(SENTIMENT_SRC))
    rc = build_detector(args.check, args.force)
    return build_features(args.check, args.force) or rc


def build_features(check: bool, force: bool) -> int:
    from stormwatch_sentiment.engines.native import LIBRARY, SOURCE, native_dir

    target = native_dir()
    settled = _settled("features", target, check, force)
    if settled is not None:
        return settled
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        print(
            "native features: nicht gebaut, es fehlt ein C-Compiler / not built, no C "
            "compiler (cc). Sentiment scores through numpy (slower, same results)."
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="stormwatch-native-") as tmp:
        staging = Path(tmp) / "lib"
        staging.mkdir()
        command = [cc, *C_FLAGS, "-o", str(staging / LIBRARY), str(SOURCE), "-lm"]
        if not _compiled("features", command, "sentiment scores through numpy."):
            return 0
        _install(target, staging)
    print(f"native features: built ({target.name})")
    return 0


def _settled(what: str, target: Path, check: bool, force: bool) -> int | None:
    """The exit status where nothing is to be built (a check, or a current build), else
    None."""
    present = (target / "BUILT").is_file()
    if check:
        print(f"native {what}: {'current' if present else 'missing'} ({target.name})")
        return 0 if present else 1
    if present and not force:
        print(f"native {what}: current ({target.name})")
        return 0
    return None


def _compiled(what: str, command: list[str], fallback: str, **options: Any) -> bool:
    """Run one build command; on failure show its output and say what runs instead."""
    proc = subprocess.run(command, capture_output=True, text=True, check=False, **options)
    if proc.returncode == 0:
        return True
    print(proc.stdout[-4000:] + proc.stderr[-4000:], file=sys.stderr)
    print(
        f"native {what}: Bau fehlgeschlagen / build failed (output above); {fallback}",
        file=sys.stderr,
    )
    return False


def _install(target: Path, staging: Path) -> None:
    """The staged build becomes ``target``; builds of other keys go, BUILT is written last."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(staging, target)
    for old in target.parent.iterdir():
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    (target / "BUILT").write_text("built by tools/build_native.py\n")


def build_detector(check: bool, force: bool) -> int:
    from stormwatch_alerting.domain import NATIVE_MODULES, native_dir

    target = native_dir()
    settled = _settled("detector", target, check, force)
    if settled is not None:
        return settled
    missing = [
        name
        for name, found in (
            ("a C compiler (cc)", shutil.which(os.environ.get("CC", "cc"))),
            ("mypy", _importable("mypyc.build")),
            ("setuptools", _importable("setuptools")),
        )
        if not found
    ]
    if missing:
        print(
            "native detector: nicht gebaut, es fehlt / not built, missing: "
            + ", ".join(missing)
            + ". The detector runs as plain Python (slower, same results)."
        )
        return 0
    print("native detector: building with mypyc (about 20 s) ...", flush=True)
    sources = [f"stormwatch_alerting/domain/{name}.py" for name in NATIVE_MODULES]
    with tempfile.TemporaryDirectory(prefix="stormwatch-native-") as tmp:
        staging = Path(tmp) / "lib"
        command = [sys.executable, "-c", _SETUP, ",".join(sources), str(Path(tmp) / "c")]
        env = {**os.environ, "MYPY_CACHE_DIR": str(Path(tmp) / "mypy-cache")}
        fallback = "the detector runs as plain Python."
        if not _compiled("detector", [*command, str(staging)], fallback, cwd=SRC, env=env):
            return 0
        _install(target, staging)
    print(f"native detector: built ({target.name})")
    return 0


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


if __name__ == "__main__":
    sys.exit(main())
