"""``ids demo``: the whole pipeline in about three minutes on two CPU cores
(:mod:`ids_lightning.analysis.demo`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from ids_lightning.analysis.demo import EPOCHS, demo
from ids_lightning.core.errors import exit_status
from ids_lightning.training.config import PROJECT_ROOT, RUN_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ids demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root (holds nsl_kdd/)"
    )
    parser.add_argument("--output", type=Path, default=None, help="run folder (default: outputs/demo/<time>_<id>)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs (default: %(default)s)")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    project = logging.getLogger("ids_lightning")
    project.addHandler(handler)
    project.setLevel(logging.INFO)
    project.propagate = False  # a library may configure the root logger too (onnxruntime does)
    output = args.output or PROJECT_ROOT / "outputs" / "demo" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{RUN_ID}"
    demo(args.data_dir, output, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
