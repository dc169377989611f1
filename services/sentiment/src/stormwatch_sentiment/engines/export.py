"""``stormwatch model export``: hub model -> directory the ONNX engine loads.

Needs internet and the ``export`` extra (optimum + torch): ``uv sync --extra export``.
Writes ``model.onnx`` (fp32), ``model.int8.onnx`` (dynamic int8), the tokenizer files,
``config.json`` and ``stormwatch.json`` (source model id and the text cleaning it expects).
The planning and metadata parts are pure and unit-tested; the download and the ONNX export
are optimum's and are not run in tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stormwatch_sentiment.engines.preprocess import preprocess_name_for_model_id

DOCUMENTED_MODELS: dict[str, str] = {
    "cardiffnlp/twitter-xlm-roberta-base-sentiment": (
        "XLM-T, multilingual tweets (labels negative/neutral/positive); the model card names "
        "no licence: clarify before production use"
    ),
    "oliverguhr/german-sentiment-bert": (
        "German, MIT licence; expects its own text cleaning (applied automatically)"
    ),
}


@dataclass(frozen=True, slots=True)
class ExportPlan:
    model_id: str
    out_dir: Path
    fp32: Path
    int8: Path
    preprocess: str

    def metadata(self) -> dict[str, str]:
        return {
            "model_id": self.model_id,
            "preprocess": self.preprocess,
            "fp32": self.fp32.name,
            "int8": self.int8.name,
        }


def plan_export(model_id: str, out_dir: str | Path) -> ExportPlan:
    model_id = model_id.strip()
    if not model_id or (model_id.startswith(("/", ".")) and not Path(model_id).exists()):
        raise ValueError(f"not a hub model id or local directory: {model_id!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory")
    return ExportPlan(
        model_id=model_id,
        out_dir=out,
        fp32=out / "model.onnx",
        int8=out / "model.int8.onnx",
        preprocess=preprocess_name_for_model_id(model_id),
    )


def write_metadata(plan: ExportPlan) -> Path:
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    path = plan.out_dir / "stormwatch.json"
    path.write_text(json.dumps(plan.metadata(), indent=2) + "\n", encoding="utf-8")
    return path


def export(model_id: str, out_dir: str | Path) -> ExportPlan:  # pragma: no cover - network
    plan = plan_export(model_id, out_dir)
    try:
        from optimum.onnxruntime import ORTModelForSequenceClassification
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise RuntimeError("model export needs the export extra: uv sync --extra export") from exc
    from stormwatch_sentiment.engines.onnx_engine import quantize_int8

    plan.out_dir.mkdir(parents=True, exist_ok=True)
    model = ORTModelForSequenceClassification.from_pretrained(plan.model_id, export=True)
    model.save_pretrained(str(plan.out_dir))
    AutoTokenizer.from_pretrained(plan.model_id).save_pretrained(str(plan.out_dir))
    quantize_int8(plan.fp32, plan.int8)
    write_metadata(plan)
    return plan
