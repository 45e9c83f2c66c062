"""``ids ensemble RUN... --output DIR``: several finished runs (seeds of one protocol) averaged in
one ONNX model, evaluated like a run (:mod:`ids_lightning.analysis.ensemble`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ids_lightning.analysis.ensemble import ensemble
from ids_lightning.core.errors import exit_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ids ensemble", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=Path, help="finished run folders (same protocol, other seeds), or a seeds=[...] folder"
    )
    parser.add_argument("--output", type=Path, required=True, help="the ensemble's run folder")
    parser.add_argument("--data-dir", default=None, help="data root (default: $IDS_DATA_DIR, else data/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    metrics = ensemble(args.runs, args.output, args.data_dir)
    print(f"test accuracy {metrics['test/acc']:.4f}, macro-F1 {metrics['test/f1_macro']:.4f}; written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
