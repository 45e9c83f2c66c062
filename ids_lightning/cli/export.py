"""``ids export RUN_DIR``: re-export a finished run to ONNX (fp32 and int8), exactly as the run's
export step does, and update the ``onnx/*`` entries of its ``metrics.json``
(:func:`ids_lightning.training.run_folder.reexport`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ids_lightning.core.errors import exit_status
from ids_lightning.training.run_folder import reexport


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ids export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder")
    parser.add_argument("--data-dir", default=None, help="data root (default: $IDS_DATA_DIR, else data/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for key, value in reexport(args.run_dir, args.data_dir).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
