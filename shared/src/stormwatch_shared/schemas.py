"""JSON Schema snapshots of the events, committed under ``shared/schemas/``.

A consumer in another team (or language) reads these files, so a schema change must be a
deliberate, reviewed diff: the unit tests fail when a model changes and the snapshot does
not. Regenerate with ``make schemas`` (``python -m stormwatch_shared.schemas``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stormwatch_shared.events import EVENT_MODELS

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "schemas"


def current() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema() for name, model in EVENT_MODELS.items()}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = SNAPSHOT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in current().items():
        path = directory / f"{name}.v1.schema.json"
        path.write_text(render(schema), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write():
        print(p)
