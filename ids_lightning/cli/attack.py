"""``ids attack RUN_DIR``: FGSM/PGD against a finished run, constrained to valid traffic unless
``--unconstrained`` (:mod:`ids_lightning.analysis.attack`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ids_lightning.analysis.attack import attack
from ids_lightning.core.errors import exit_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ids attack", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder")
    parser.add_argument("--unconstrained", action="store_true", help="plain L-inf attacks (may touch categories)")
    parser.add_argument(
        "--eps", type=float, nargs="+", default=None, help="budgets in scaled units (default: 0.01 0.02 0.05 0.1 0.2)"
    )
    parser.add_argument("--max-rows", type=int, default=4096, help="0 = the whole test split")
    parser.add_argument("--attacks", nargs="+", default=["fgsm", "pgd"], help="fgsm and/or pgd (default: both)")
    parser.add_argument("--pgd-steps", type=int, default=10, help="PGD steps (default: %(default)s)")
    parser.add_argument("--round-integers", action="store_true", help="round integer counts after unscaling")
    parser.add_argument("--data-dir", default=None, help="data root (default: $IDS_DATA_DIR, else data/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    summary = attack(
        args.run_dir,
        not args.unconstrained,
        args.eps,
        args.max_rows or None,
        tuple(args.attacks),
        args.pgd_steps,
        args.round_integers,
        args.data_dir,
    )
    for key, value in summary.items():
        if key.startswith("test_adv/") and key.endswith("/acc"):
            print(f"{key}: {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
