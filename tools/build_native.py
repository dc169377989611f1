"""Compile the detector's hot modules with mypyc (see ``stormwatch_alerting.domain``).

Usage: ``.venv/bin/python tools/build_native.py [--force] [--check]``; ``make setup`` runs
it. Needs a C compiler (gcc or clang) and the dev dependencies (mypy, setuptools). Without
them the build says so and exits 0: the service then runs the same sources as plain Python,
only slower. ``--check`` exits 1 unless the compiled build of the current sources is
present, for CI.

The build takes about 20 s on two cores and lands in
``services/alerting/src/stormwatch_alerting/domain/_native/<key>/``; older keys are removed.
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

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "services" / "alerting" / "src"

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
        description="Kompiliert den Detektor (mypyc) / compile the detector with mypyc.",
        epilog="Beispiel / example: .venv/bin/python tools/build_native.py --check",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    parser.add_argument(
        "--check", action="store_true", help="only check: exit 1 unless the build is current"
    )
    args = parser.parse_args(argv)
    os.environ["STORMWATCH_PURE_PYTHON"] = "1"  # the key is computed, nothing is loaded
    sys.path.insert(0, str(SRC))
    from stormwatch_alerting.domain import NATIVE_MODULES, native_dir

    target = native_dir()
    done = target / "BUILT"
    if args.check:
        ok = done.is_file()
        print(f"native detector: {'current' if ok else 'missing'} ({target.name})")
        return 0 if ok else 1
    if done.is_file() and not args.force:
        print(f"native detector: current ({target.name})")
        return 0
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
        proc = subprocess.run(
            [sys.executable, "-c", _SETUP, ",".join(sources), str(Path(tmp) / "c"), str(staging)],
            cwd=SRC,
            env={**os.environ, "MYPY_CACHE_DIR": str(Path(tmp) / "mypy-cache")},
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stdout[-4000:] + proc.stderr[-4000:], file=sys.stderr)
            print(
                "native detector: Bau fehlgeschlagen / build failed (output above); the "
                "detector runs as plain Python.",
                file=sys.stderr,
            )
            return 0
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(staging, target)
    for old in target.parent.iterdir():
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    done.write_text("built by tools/build_native.py\n")
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
