"""Which novelty score flags unseen attacks best? The comparison over finished runs.

``python -m ids_lightning.bench.novelty RUN... --output outputs/bench/novelty.json`` tests each
run's best checkpoint again with only :class:`~ids_lightning.training.callbacks.novelty.NoveltyCalibration`
(its ``novelty.json`` is left as it is) and tabulates, per score (max-softmax, energy,
Mahalanobis on the penultimate layer, and the models of benign traffic only: the benign density,
an isolation forest, a benign mixture on the penultimate layer; TabM's member spread), each
calibrated on benign validation rows at ``--fpr``, and the deployed pair (max-softmax, or called
benign with the benign density past its threshold):
benign false alarms on the test set, the share of attacks of unseen types flagged (called an
attack class, or unknown), the share of those the classifier calls benign that the flag
catches, and ROC-AUC of novel attacks against benign rows. Mean ± std over the runs; the
table (``--table``, CSV) is what ``make results`` renders.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_write_bytes, atomic_write_json
from ids_lightning.training.console import quiet

MEASURES = ("benign_flagged", "novel_types_flagged", "novel_missed_flagged_unknown", "auroc_novel_vs_benign")


def compare(run_dir: Path, fpr: float, data_dir: str | None) -> dict:
    """The comparison's metrics of one finished run."""
    import lightning as L
    import torch

    from ids_lightning.models import IDSLitModule
    from ids_lightning.training.callbacks.novelty import NoveltyCalibration
    from ids_lightning.training.run_folder import rebuild

    _, datamodule, net = rebuild(run_dir, data_dir)
    module = IDSLitModule(net, optimizer=torch.optim.Adam, class_names=datamodule.class_names)
    with tempfile.TemporaryDirectory() as scratch:  # the run's own novelty.json stays
        callback = NoveltyCalibration(scratch, fpr)
        trainer = L.Trainer(
            accelerator="cpu", logger=False, callbacks=[callback], enable_progress_bar=False, enable_model_summary=False
        )
        trainer.test(module, datamodule=datamodule, verbose=False)
    return callback.summary


FUSED = {  # the deployed pair: max-softmax, or called benign and unlike benign traffic
    "benign_flagged": "test/novelty/fused/benign_flagged",
    "novel_types_flagged": "test/novel_types/flagged_fused",
    "novel_missed_flagged_unknown": "test/novel_types/missed_flagged_unknown_fused",
}


def table(runs: list[dict], scores: tuple[str, ...]) -> list[dict]:
    """Mean ± std over the runs of each score's measures, and of the deployed pair's."""
    keys = {score: {m: f"test/novelty/{score}/{m}" for m in MEASURES} for score in scores}
    if any(FUSED["benign_flagged"] in r for r in runs):
        keys["fused: max_softmax or benign_density (deployed)"] = FUSED
    rows = []
    for score, measured in keys.items():
        row: dict = {"score": score, "runs": len(runs)}
        for measure in MEASURES:
            values = [r[measured[measure]] for r in runs if r.get(measured.get(measure, "")) is not None]
            row[f"{measure}_mean"] = float(np.mean(values)) if values else None
            row[f"{measure}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        rows.append(row)
    return rows


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> list[dict]:
    from ids_lightning.training.callbacks.novelty import COMPARED

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench/novelty.json"))
    parser.add_argument("--table", type=Path, default=None, help="CSV of means ± std (default: beside --output)")
    parser.add_argument("--fpr", type=float, default=0.01, help="benign false-alarm rate on validation")
    parser.add_argument("--data-dir", default=os.environ.get("IDS_DATA_DIR"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    quiet()
    runs = []
    for number, run_dir in enumerate(args.runs, start=1):
        runs.append({"run": str(run_dir), **compare(run_dir, args.fpr, args.data_dir)})
        print(f"[{number}/{len(args.runs)}] {run_dir}", flush=True)
    rows = table(runs, COMPARED)
    atomic_write_json(args.output, {"fpr": args.fpr, "runs": runs, "table": rows})
    atomic_write_bytes(args.table or args.output.with_suffix(".csv"), to_csv(rows).encode())
    for row in rows:
        print(f"  {row['score']:<18} " + "  ".join(f"{m} {row[f'{m}_mean']}" for m in MEASURES))
    return rows


if __name__ == "__main__":
    sys.exit(exit_status(main))
