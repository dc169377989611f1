"""The pure detection domain, and the switch to its compiled build where one is present.

Why compiled: the detector runs in the alerting service's consumer loop, one call per
mention and one bucket close per target and five minutes. Compiled with mypyc (the same
sources, made into C extensions by ``tools/build_native.py``, which ``make setup`` runs) it
handled 1.25-1.45 times as many busy-target mentions and 1.7 times as many sparse ones
(2026-12-02, ``bench/bench_detector.py``), with the same floats bit for bit
(``tests/unit/test_native_detector.py``).

The compiled modules live in ``_native/<key>/`` beside these sources, where ``<key>`` is a
hash of exactly these sources and of the interpreter. They are used only when the key
matches: a source edited after the build is then run as plain Python (rebuild with
``make setup`` to get the compiled speed back), never as a stale extension. Setting
``STORMWATCH_PURE_PYTHON=1`` forces plain Python.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from pathlib import Path

NATIVE_MODULES = ("baseline", "detector", "figures", "nbstats", "types")
"""What is compiled: the hot path of ``Detector.observe``, the values it passes on, and
the per-target figures counted beside it."""

_HERE = Path(__file__).resolve().parent


def native_key() -> str:
    """A hash of the compiled modules' sources and the interpreter's ABI."""
    h = hashlib.sha256()
    h.update(f"{sys.implementation.cache_tag} {sysconfig.get_config_var('EXT_SUFFIX')}".encode())
    for name in NATIVE_MODULES:
        h.update(name.encode() + b"\0" + (_HERE / f"{name}.py").read_bytes() + b"\0")
    return h.hexdigest()[:16]


def native_dir() -> Path:
    """Where the build for the current sources goes (and is looked for)."""
    return _HERE / "_native" / native_key()


def _activate() -> bool:
    if os.environ.get("STORMWATCH_PURE_PYTHON", "").strip() not in ("", "0"):
        return False
    root = native_dir()
    compiled = root / "stormwatch_alerting" / "domain"
    if not (root / "BUILT").is_file():  # written last by the build: a build that broke off
        return False  # halfway is never half used
    # the extensions of this package come first; the modules that are not compiled are
    # still found in the second entry. The root holds the one shared library the
    # extensions load (a uniquely named top-level module).
    __path__.insert(0, str(compiled))
    if str(root) not in sys.path:
        sys.path.append(str(root))
    return True


NATIVE = _activate()
"""True when the compiled build of the current sources is in use."""
