"""``ids search [overrides]``: an Optuna search over a validation metric, each trial a run with
the trial's overrides (:mod:`ids_lightning.training.search`)."""

from __future__ import annotations

import logging
import sys

from ids_lightning.core.errors import exit_status
from ids_lightning.training.search import search


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: ids search hparams_search=<name> [overrides of train.py ...]\n\n{__doc__}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = search(argv)
    print(
        f"best {result['metric']} = {result['best_value']:.4f} (trial {result['best_trial']}): {result['best_params']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
