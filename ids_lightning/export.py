"""Re-export a finished run: ``python -m ids_lightning.export RUN_DIR``.

Rebuilds the net from ``config.yaml`` (allow-listed classes and plain values only, see
:mod:`ids_lightning.runs`) and the best checkpoint and writes ``model.onnx``,
``model.int8.onnx`` and the bench rows exactly as the export callback does at fit end,
then updates the ``onnx/*`` entries of ``metrics.json``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ids_lightning.deploy import ProbabilityHead, export_run
from ids_lightning.runs import rebuild, update_metrics


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder")
    parser.add_argument("--data-dir", default=None, help="data root (default: $IDS_DATA_DIR, else the run's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    _, datamodule, net = rebuild(args.run_dir, args.data_dir)
    tensors = {stage: (x.cpu(), y.cpu()) for stage, (x, y) in datamodule.tensors.items()}
    model = ProbabilityHead(net, datamodule.num_classes == 2).eval()
    summary = export_run(model, tensors, args.run_dir, datamodule.class_names)
    update_metrics(args.run_dir, summary)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return summary


if __name__ == "__main__":
    main()
