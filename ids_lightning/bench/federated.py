"""Federated vs centralised vs local-only, FedProx under label skew, and a malicious site.

``python -m ids_lightning.bench.federated`` runs, each over ``--seeds`` into
``--runs-dir/<experiment>/<variant>/s<seed>`` (one ``python train.py`` process per run, so a
re-run skips finished runs and resumes the rest):

- ``iot23``: one site per IoT-23 training capture, FedAvg for 20 rounds of 2 local epochs (with
  every site also trained alone for 40 epochs: the local-only rows), beside centralised training
  on the same split for 40 epochs (test: the unseen Torii captures); ``iot23_random`` the same
  on IoT-23's random split (test: held-out rows of the training captures);
- ``dirichlet``: NSL-KDD's training rows in 10 sites of Dirichlet(0.1) label skew, FedAvg vs
  FedProx (mu 0.01, not tuned), tested on KDDTest+, beside centralised training;
- ``malicious``: 10 near-IID NSL-KDD sites (alpha 10), FedAvg and the coordinate-wise median,
  clean and with site 0 training on reversed labels and sending ten times its update.

Then ``report.{csv,md}`` (mean ± std over seeds) and ``curves.png`` (global macro-F1 per round:
validation, which chooses the round, and test, drawn only) go to the runs folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_path, atomic_write_bytes, atomic_write_json
from ids_lightning.training.config import PROJECT_ROOT, QUIET

FEDERATED = ["experiment=federated"]
NSL_KDD = ["dataset=nsl_kdd", "dataset.scaler=log_minmax"]
TEN_SITES = [*FEDERATED, "federated.partition=dirichlet", "federated.clients=10"]
SKEWED = [*TEN_SITES, "federated.alpha=0.1", "federated.rounds=20"]
NEAR_IID = [*TEN_SITES, "federated.alpha=10", "federated.rounds=10"]
IOT23 = ["dataset=iot23", "dataset.scaler=log_minmax"]
ATTACKED = ["federated.malicious=1", "federated.attack=label_flip", "federated.attack_scale=10"]
EXPERIMENTS: dict[str, dict[str, list[str]]] = {
    "iot23": {
        "fedavg": [*IOT23, *FEDERATED, "federated.rounds=20", "federated.local_epochs=2", "federated.local_only=true"],
        "centralised": [*IOT23, "trainer.max_epochs=40"],
    },
    "iot23_random": {  # the same capture sites, tested on held-out rows of the training captures
        "fedavg": [*IOT23, "dataset.split=random", *FEDERATED, "federated.rounds=20", "federated.local_epochs=2"],
        "centralised": [*IOT23, "dataset.split=random", "trainer.max_epochs=40"],
    },
    "dirichlet": {
        "fedavg": [*NSL_KDD, *SKEWED],
        "fedprox": [*NSL_KDD, *SKEWED, "federated.strategy=fedprox", "federated.mu=0.01"],
        "centralised": [*NSL_KDD, "trainer.max_epochs=20"],
    },
    "malicious": {
        "fedavg": [*NSL_KDD, *NEAR_IID],
        "fedavg_attacked": [*NSL_KDD, *NEAR_IID, *ATTACKED],
        "fedmedian": [*NSL_KDD, *NEAR_IID, "federated.strategy=fedmedian"],
        "fedmedian_attacked": [*NSL_KDD, *NEAR_IID, "federated.strategy=fedmedian", *ATTACKED],
    },
}
COLUMNS = [
    "experiment", "variant", "n_seeds", "test/acc", "test/f1_macro", "val/f1_macro_best", "val_acc_over_rounds",
    "best_round", "rounds_to_target", "megabytes", "fit_seconds", "local_only/test/acc", "local_only/test/f1_macro",
]  # fmt: skip


def run(experiment: str, variant: str, seed: int, runs_dir: Path, timeout: float) -> Path:
    folder = runs_dir / experiment / variant / f"s{seed}"
    if not (folder / "metrics.json").is_file():
        overrides = [*EXPERIMENTS[experiment][variant], *QUIET, f"seed={seed}", f"hydra.run.dir={folder}"]
        started = time.perf_counter()
        print(f"{experiment}/{variant}/s{seed}: python train.py {' '.join(overrides)}", flush=True)
        done = subprocess.run([sys.executable, "train.py", *overrides], cwd=PROJECT_ROOT, timeout=timeout, check=False)
        print(f"  exit {done.returncode} after {time.perf_counter() - started:.0f} s", flush=True)
    return folder


def _mean_std(values: list[float], digits: int = 4) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    spread = f" ± {np.std(values, ddof=1):.{digits}f}" if len(values) > 1 else ""
    return f"{np.mean(values):.{digits}f}{spread}"


def report(runs_dir: Path, experiments: list[str], seeds: list[int]) -> list[dict]:
    rows = []
    for experiment in experiments:
        for variant in EXPERIMENTS[experiment]:
            metrics = [
                json.loads(p.read_text())
                for seed in seeds
                if (p := runs_dir / experiment / variant / f"s{seed}" / "metrics.json").is_file()
            ]
            if not metrics:
                continue

            def column(key: str, digits: int = 4, metrics: list[dict] = metrics) -> str:
                return _mean_std([m.get(key) for m in metrics], digits)

            row = {"experiment": experiment, "variant": variant, "n_seeds": len(metrics)}
            for key in ("test/acc", "test/f1_macro", "val/f1_macro_best"):
                row[key] = column(key)
            row["val_acc_over_rounds"] = _mean_std(_over_rounds(runs_dir / experiment / variant, seeds))
            row["fit_seconds"] = column("fit_seconds", 0)
            row["best_round"] = column("federated/best_round", 1)
            row["rounds_to_target"] = column("federated/rounds_to_target", 1)
            traffic = [m.get("federated/sent_bytes", 0) + m.get("federated/received_bytes", 0) for m in metrics]
            row["megabytes"] = _mean_std([bytes_ / 1e6 for bytes_ in traffic if bytes_], 1)
            row["local_only/test/acc"] = column("local_only/test/acc_mean")
            row["local_only/test/f1_macro"] = column("local_only/test/f1_macro_mean")
            rows.append(row)
    with atomic_path(runs_dir / "report.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    atomic_write_bytes(runs_dir / "report.md", ("\n".join(lines) + "\n").encode())
    atomic_write_json(runs_dir / "report.json", rows)
    _curves(runs_dir, experiments, seeds)
    print("\n".join(lines))
    return rows


def _over_rounds(variant_dir: Path, seeds: list[int]) -> list[float]:
    """Per seed, the global validation accuracy averaged over the rounds: how good the model in
    use during training was (an attacked FedAvg swings between rounds that the choice hides)."""
    means = []
    for seed in seeds:
        path = variant_dir / f"s{seed}" / "federated.json"
        if path.is_file():
            means.append(float(np.mean([r["val_acc"] for r in json.loads(path.read_text())["rounds"][1:]])))
    return means


def _curves(runs_dir: Path, experiments: list[str], seeds: list[int]) -> None:
    """Global macro-F1 per round, mean over seeds: validation (solid, chooses) and test (dashed)."""
    fig, axes = plt.subplots(1, len(experiments), figsize=(5.5 * len(experiments), 4.2), squeeze=False)
    for ax, experiment in zip(axes[0], experiments):
        for index, variant in enumerate(EXPERIMENTS[experiment]):
            records = [
                json.loads(p.read_text())["rounds"][1:]
                for seed in seeds
                if (p := runs_dir / experiment / variant / f"s{seed}" / "federated.json").is_file()
            ]
            if not records:
                continue
            length = min(map(len, records))
            rounds = np.arange(1, length + 1)
            color = f"C{index}"
            for key, style in (("val_f1_macro", "-"), ("test_f1_macro", "--")):
                values = np.mean([[r[key] for r in record[:length]] for record in records], axis=0)
                ax.plot(rounds, values, style, color=color, label=f"{variant} ({key.split('_')[0]})")
        ax.set_title(f"{experiment}: global macro-F1 per round")
        ax.set_xlabel("round")
        ax.set_ylabel("macro-F1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(runs_dir / "curves.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="python -m ids_lightning.bench.federated", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=list(EXPERIMENTS))
    parser.add_argument("--variants", nargs="+", help="only these variants of the experiments (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--runs-dir", type=Path, default=Path("outputs/federated"))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--report-only", action="store_true", help="tabulate the finished runs, train nothing")
    args = parser.parse_args(argv)
    runs_dir = args.runs_dir.resolve()
    if not args.report_only:
        for seed in args.seeds:  # a whole first seed of every experiment before the second one
            for experiment in args.experiments:
                for variant in EXPERIMENTS[experiment]:
                    if not args.variants or variant in args.variants:
                        run(experiment, variant, seed, runs_dir, args.timeout)
    return report(runs_dir, args.experiments, args.seeds)


if __name__ == "__main__":
    sys.exit(exit_status(main))
