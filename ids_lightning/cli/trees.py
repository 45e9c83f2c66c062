"""``ids trees [--trials N] [--output DIR] [overrides of train.py]``: LightGBM tuned with Optuna on
validation macro-F1 and exported to ONNX as a run folder (:mod:`ids_lightning.analysis.trees`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ids_lightning.analysis import trees
from ids_lightning.core.errors import exit_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ids trees", description=trees.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=trees.TreeSearch.trials, help="Optuna trials (default 30)")
    parser.add_argument("--max-rounds", type=int, default=trees.TreeSearch.max_rounds, help="boosting rounds at most")
    parser.add_argument("--output", type=Path, help="the run folder (default outputs/trees/<time>_<id>)")
    parser.add_argument("overrides", nargs="*", help="overrides of train.py (dataset=..., seed=...)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.max_rounds < 1:
        parser.error("--trials and --max-rounds must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    search = trees.TreeSearch(trials=args.trials, max_rounds=args.max_rounds)
    trees.tuned_trees(args.overrides, args.output, search)
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
