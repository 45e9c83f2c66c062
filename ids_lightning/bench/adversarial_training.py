"""What adversarial training buys, at the official protocol's scale.

``python -m ids_lightning.bench.adversarial_training`` trains ``experiment=official`` on NSL-KDD
(tested on all of KDDTest+) twice, ``--seeds`` seeds trained together each time: plainly, and
with ``model.adversarial.method`` (PGD-3 by default) at ``--eps`` on half of each batch. Both
are attacked alike at test end: constrained FGSM and PGD (10 steps) at ``--eps`` on every
KDDTest+ row. Writes ``outputs/bench/adversarial.json``: per training, the mean and standard
deviation over seeds of clean and attacked accuracy, and the clean cost and robust gain.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.training.config import PROJECT_ROOT, compose
from ids_lightning.training.run import device_name

KEYS = ("test/acc", "test/f1_macro")


def _row(method: str, run_dir: Path, eps: float, seconds: float) -> dict:
    summary = json.loads((run_dir / "replicas.json").read_text())
    runs = [json.loads((run_dir / name / "metrics.json").read_text()) for name in summary["runs"]]
    attacked = [f"test_adv/{attack}/eps_{eps:g}/acc" for attack in ("fgsm", "pgd")]
    row = {
        "adversarial_training": method,
        "seeds": summary["seeds"],
        "epochs_run": [run["epochs_run"] for run in runs],
        "seconds": round(seconds, 1),
        "run_dir": str(run_dir),
    }
    for key in (*KEYS, *attacked):
        values = [run[key] for run in runs]
        row[key] = round(statistics.fmean(values), 4)
        row[f"{key}_std"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
        row[f"{key}_per_seed"] = [round(v, 4) for v in values]
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50, help="most epochs of each run (default: %(default)s)")
    parser.add_argument("--eps", type=float, default=0.1, help="training and attack budget (default: %(default)s)")
    parser.add_argument("--method", choices=["fgsm", "pgd"], default="pgd", help="adversarial training attack")
    parser.add_argument("--steps", type=int, default=3, help="PGD steps in training (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds, trained together")
    parser.add_argument("--rows", type=int, default=None, help="KDDTest+ rows attacked (default: all)")
    parser.add_argument("--override", nargs="*", default=[], help="more train.py overrides, e.g. debug=limit")
    parser.add_argument("--data-dir", default=os.environ.get("IDS_DATA_DIR", "data"), help="data root")
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "adversarial.json", help="JSON file"
    )
    args = parser.parse_args(argv)
    from ids_lightning.launch import launch

    gpu = torch.cuda.is_available()
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    rows = []
    for method in ("none", args.method):
        run_dir = args.output.parent / f"adversarial_{stamp}_{method}"
        overrides = [
            "experiment=official",
            "dataset=nsl_kdd",
            f"seeds=[{','.join(map(str, args.seeds))}]",
            f"trainer.max_epochs={args.epochs}",
            "logger=none",
            "export=none",
            f"callbacks.adversarial_eval.eps=[{args.eps}]",
            f"callbacks.adversarial_eval.max_rows={'null' if args.rows is None else args.rows}",
            f"model.adversarial.method={method}",
            f"model.adversarial.eps={args.eps}",
            f"model.adversarial.steps={args.steps}",
            *(["trainer=gpu", "model.cuda_graph=true"] if gpu else []),
            *args.override,
        ]
        started = time.perf_counter()
        launch(compose(overrides, run_dir, data_dir=args.data_dir))
        rows.append(_row(method, run_dir, args.eps, time.perf_counter() - started))
    plain, robust = rows
    fgsm = f"test_adv/fgsm/eps_{args.eps:g}/acc"
    result = {
        "device": device_name(torch.device("cuda" if gpu else "cpu")),
        "command": "python -m ids_lightning.bench.adversarial_training " + " ".join(argv or []),
        "runs": rows,
        # what robustness costs on clean traffic, and what it buys under FGSM at eps
        "clean_cost": round(plain["test/acc"] - robust["test/acc"], 4),
        "robust_gain_fgsm": round(robust[fgsm] - plain[fgsm], 4),
    }
    atomic_write_json(args.output, result)
    _print(result, args.eps)
    return result


def _print(result: dict, eps: float) -> None:
    table = Table(title=f"Adversarial training on NSL-KDD, all of KDDTest+ — {result['device']}")
    columns = {"training": None, "clean acc": "test/acc", "macro-F1": "test/f1_macro"}
    columns |= {f"{a.upper()} ε={eps:g} acc": f"test_adv/{a}/eps_{eps:g}/acc" for a in ("fgsm", "pgd")}
    for column in columns:
        table.add_column(column, justify="left" if column == "training" else "right")
    for row in result["runs"]:
        cells = [f"{row[k]:.4f} ± {row[k + '_std']:.4f}" for k in columns.values() if k]
        table.add_row(row["adversarial_training"], *cells)
    Console().print(table)
    Console().print(
        f"clean cost {result['clean_cost']:+.4f}, robust gain under FGSM {result['robust_gain_fgsm']:+.4f} "
        f"(mean of seeds {result['runs'][0]['seeds']})"
    )


if __name__ == "__main__":
    sys.exit(exit_status(main))
