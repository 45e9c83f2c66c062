"""``ids report SWEEP...``: the table and figures of finished sweeps, every row beside the
classical baselines on the same rows (:mod:`ids_lightning.analysis.report`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ids_lightning.analysis.report import METRICS, report
from ids_lightning.core.errors import exit_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ids report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="sweep folders (outputs/multirun/<sweep>)")
    parser.add_argument("--output", type=Path, default=None, help="default: the first folder")
    parser.add_argument("--metrics", nargs="+", default=None, help=f"default: {' '.join(METRICS)}")
    parser.add_argument(
        "--no-baselines", action="store_true", help="do not fit the classical baselines a protocol lacks"
    )
    parser.add_argument(
        "--ensembles",
        action="store_true",
        help="add a row for the ensemble of each row's seeds (built once under <output>/ensembles/)",
    )
    parser.add_argument(
        "--tree-trials",
        type=int,
        default=30,
        help="Optuna trials of the LightGBM tuned on validation beside each one-flow row (default 30; 0: none)",
    )
    parser.add_argument(
        "--allow-mixed-data",
        action="store_true",
        help="average runs of one row even when their provenance.json name different data files",
    )
    args = parser.parse_args(argv)
    if args.tree_trials < 0:
        parser.error("--tree-trials must be at least 0")
    report(
        args.folders,
        args.output,
        args.metrics,
        baselines=not args.no_baselines,
        ensembles=args.ensembles,
        tree_trials=args.tree_trials,
        allow_mixed_data=args.allow_mixed_data,
    )
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
