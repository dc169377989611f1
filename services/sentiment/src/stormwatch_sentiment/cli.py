"""``stormwatch score`` and ``stormwatch model export`` (wired into the root CLI by ``register``).

Engine selection follows the service: ``SENTIMENT_ENGINE=default|onnx|pipeline`` and
``SENTIMENT_MODEL_PATH``; with neither set the offline default model is used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

CHUNK = 1_024
PROGRESS_EVERY_S = 2.0

SCORE_EPILOG = """examples:
  stormwatch score --input texts.txt --output scores.jsonl
  SENTIMENT_ENGINE=onnx SENTIMENT_MODEL_PATH=models/xlmt \\
      stormwatch score --input t.txt --output o.jsonl
  stormwatch score --engine default --input - --output - < texts.txt

Input: one text per line (UTF-8; undecodable bytes are replaced, never fatal).
Output: one JSON object per input line, same order, with "label" and "scores"
(negative/neutral/positive probabilities), plus "language", "language_supported" and "topics".
"""

EXPORT_EPILOG = """examples:
  stormwatch model export cardiffnlp/twitter-xlm-roberta-base-sentiment models/xlmt
  stormwatch model export oliverguhr/german-sentiment-bert models/gsbert

Needs internet and the export extra (uv sync --extra export). Writes model.onnx (fp32),
model.int8.onnx (int8), tokenizer files, config.json and stormwatch.json. Use the result with
SENTIMENT_ENGINE=onnx SENTIMENT_MODEL_PATH=OUT_DIR. Licences: the XLM-T card names no licence;
german-sentiment-bert is MIT.
"""


def register(subparsers: Any) -> None:
    """Add ``score`` and ``model export`` to the root CLI's subparsers."""
    score = subparsers.add_parser(
        "score",
        help="score the sentiment of texts (one per line) into JSON lines",
        description="Score the sentiment and crisis topics of texts, one per line.",
        epilog=SCORE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("--input", required=True, help="text file, one text per line ('-': stdin)")
    score.add_argument("--output", required=True, help="JSON lines file ('-': stdout)")
    score.add_argument(
        "--engine",
        choices=("default", "onnx", "pipeline"),
        help="override SENTIMENT_ENGINE (default: offline model)",
    )
    score.add_argument("--model-path", help="override SENTIMENT_MODEL_PATH")
    score.add_argument("--threads", type=int, default=0, help="inference threads (0: runtime)")
    score.set_defaults(func=run_score)

    model = subparsers.add_parser("model", help="manage transformer sentiment models")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    export = model_sub.add_parser(
        "export",
        help="export a hub model to fp32 and int8 ONNX plus tokenizer files",
        epilog=EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("model_id", metavar="MODEL_ID", help="hub id or local model directory")
    export.add_argument("out_dir", metavar="OUT_DIR", help="directory to write")
    export.set_defaults(func=run_export)


def _lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        yield line.rstrip("\r\n")


def _open_in(path: str) -> TextIO:
    if path == "-":
        return open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)
    return open(path, encoding="utf-8", errors="replace", newline="\n")


def _open_out(path: str) -> TextIO:
    if path == "-":
        return open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False)
    return open(path, "w", encoding="utf-8")


def run_score(args: argparse.Namespace) -> int:
    import os

    from stormwatch_sentiment.domain.language import guess_language, language_supported
    from stormwatch_sentiment.domain.topics import TopicTagger
    from stormwatch_sentiment.engines import load_engine

    kind = args.engine or os.environ.get("SENTIMENT_ENGINE") or "default"
    path = args.model_path or os.environ.get("SENTIMENT_MODEL_PATH") or None
    try:
        model = load_engine(kind, path, args.threads)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"stormwatch score: {exc}", file=sys.stderr)
        return 2
    tagger = TopicTagger.default()
    done = 0
    started = last = time.monotonic()
    with _open_in(args.input) as src, _open_out(args.output) as dst:
        batch: list[str] = []

        def flush() -> None:
            nonlocal done, last
            for text, s in zip(batch, model.predict(batch), strict=True):
                lang = guess_language(text)
                row = {
                    "label": s.label,
                    "scores": {k: round(v, 6) for k, v in s.scores.items()},
                    "language": lang,
                    "language_supported": language_supported(lang),
                    "topics": list(tagger.tag(text)),
                }
                dst.write(json.dumps(row, ensure_ascii=False) + "\n")
            done += len(batch)
            batch.clear()
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                rate = done / max(now - started, 1e-9)
                print(f"scored {done} texts ({rate:.0f}/s)", file=sys.stderr, flush=True)
                last = now

        for line in _lines(src):
            batch.append(line)
            if len(batch) >= CHUNK:
                flush()
        if batch:
            flush()
    print(f"scored {done} texts with {model.model_id}", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from stormwatch_sentiment.engines.export import export

    try:
        plan = export(args.model_id, Path(args.out_dir))
    except (ValueError, RuntimeError) as exc:
        print(f"stormwatch model export: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {plan.fp32} and {plan.int8}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m stormwatch_sentiment.cli``) until the root CLI wires it."""
    parser = argparse.ArgumentParser(prog="stormwatch")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
