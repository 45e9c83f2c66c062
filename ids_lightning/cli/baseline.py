"""``ids baseline [--output DIR] [overrides of train.py]``: random forest and gradient boosting on
the rows a run with those overrides would train and test on (:mod:`ids_lightning.analysis.baseline`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ids_lightning.analysis import baseline as baselines
from ids_lightning.core.errors import exit_status


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print("usage: ids baseline [--output DIR] [overrides of train.py ...]\n")
        print(baselines.__doc__)
        return 0
    output = None
    if "--output" in args:
        at = args.index("--output")
        output, args = Path(args[at + 1]), args[:at] + args[at + 2 :]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    baselines.baseline(args, output)
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
