"""``ids detect``: score a flow file with a run folder's ONNX model, torch-free
(:mod:`ids_lightning.edge.detector`). Exit status 0, 2 for refused input, 3 when the input
ended early (what came before the cut is scored and summarised)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ids_lightning.cli.arguments import positive, thread_count
from ids_lightning.core.errors import exit_status, refused
from ids_lightning.edge.detector import detect, print_summary
from ids_lightning.edge.windows import DEFAULT_MAX_HOSTS

CUT_SHORT = 3


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ids detect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="run folder (preprocess.json, model.onnx)")
    parser.add_argument(
        "--input",
        required=True,
        help="flow file of the run's dataset (its format variant is sniffed), a pipe, or - for standard input",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("alerts.jsonl"), help="one JSON line per record (default: %(default)s)"
    )
    parser.add_argument("--model", default="model.onnx", help="model.onnx or model.int8.onnx (default: %(default)s)")
    parser.add_argument(
        "--chunk-rows", type=positive, default=20_000, help="records parsed and scored at a time (default: %(default)s)"
    )
    parser.add_argument("--threads", type=thread_count, default=None, help="onnxruntime threads (default: all cores)")
    parser.add_argument(
        "--max-hosts",
        type=positive,
        default=DEFAULT_MAX_HOSTS,
        help="windowed runs: source hosts whose last flows are kept (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        summary = detect(
            args.run, args.input, args.output, args.model, args.chunk_rows, args.threads, max_hosts=args.max_hosts
        )
    except ValueError as err:  # DataError, and the model's or preprocessing's refusal of the rows
        return refused("ids detect", err)
    print_summary(summary)
    return CUT_SHORT if "error" in summary else 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
