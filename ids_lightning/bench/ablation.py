"""What makes a better NSL-KDD model? The ablation, chosen on validation only.

``python -m ids_lightning.bench.ablation`` trains the official NSL-KDD protocol's CNN-LSTM
(KDDTrain+ for training and validation, KDDTest+ as test, 5 classes; log-min-max scaling, label
encoding, batch 64, early stopping on validation macro-F1) with one setting changed per variant,
each over the same seeds, into ``--runs-dir/<variant>/s<seed>``. Ensembling is the ``same_split``
variant: the base with the data split of the first seed and only the model seed varying, so its
members share their validation rows and the ensemble of them (``same_split/ensemble``) has an
honest validation score too (across data splits one member's validation rows are another's
training rows). Then the report writes ``report.csv`` / ``report.md`` there, every variant beside the
random forest and gradient boosting fitted on its rows (tagged ``ablation+<variant>``), and the
variants are ranked by mean validation macro-F1: the only figure that chooses. Validation on
whole held-out attack types (``by_family``) is a different yardstick, so its row is compared on
test figures only, never ranked. Re-running continues where it stopped (finished runs are kept).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from ids_lightning.analysis.baseline import BASELINES
from ids_lightning.core.errors import DataError, exit_status
from ids_lightning.training.config import compose
from ids_lightning.training.console import quiet

BASE = [
    "experiment=official",
    "dataset=nsl_kdd",
    "model=cnn_lstm",
    "callbacks=default",  # no adversarial evaluation: the ablation is about clean generalisation
    "export=none",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
]
VARIANTS = {
    "base": [],
    "minmax": ["dataset.scaler=minmax"],
    "quantile": ["dataset.scaler=quantile"],
    "onehot": ["dataset.categorical=onehot"],
    "embedding": ["dataset.categorical=embedding"],
    "class_weight": ["dataset.balance=class_weight"],
    "focal": ["model.loss=focal"],
    "label_smoothing": ["model.label_smoothing=0.1"],
    "wide": ["model.net.conv_channels=128", "model.net.hidden_size=128", "model.net.hidden=128"],
    "shallow": ["model.net.num_layers=1"],
    "by_family": ["dataset.val_split=by_family"],
    "same_split": ["dataset.seed=1"],  # members of the ensemble
}
UNRANKED = {"by_family"}  # validated on other rows: its validation score is not comparable
RANKED_BY = "val/f1_macro_best"


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    quiet()


def one_run(overrides: list[str], folder: Path, data_dir: str) -> dict:
    from ids_lightning.training.run import train

    return train(compose(overrides, folder, data_dir=data_dir))


def plan(
    variants: list[str], seeds: list[int], epochs: int, runs_dir: Path, extra: list[str] = ()
) -> list[tuple[str, int, list[str], Path]]:
    """``(variant, seed, train.py overrides, run folder)`` per run."""
    return [
        (
            name,
            seed,
            [*BASE, *VARIANTS[name], f"trainer.max_epochs={epochs}", f"seed={seed}", f"tags=[ablation,{name}]", *extra],
            runs_dir / name / f"s{seed}",
        )
        for name in variants
        for seed in seeds
    ]


def ranking(table: list[dict]) -> list[dict]:
    """The deep variants (and the ensemble) by mean validation macro-F1, best first; ``by_family``
    and other unranked variants after them."""
    rows = [r for r in table if r["model"] not in BASELINES]
    for row in rows:
        row["variant"] = row["experiment"].removeprefix("ablation+")
    ranked = sorted(
        (r for r in rows if r["variant"] not in UNRANKED and f"{RANKED_BY}_mean" in r),
        key=lambda r: -r[f"{RANKED_BY}_mean"],
    )
    return ranked + [r for r in rows if r not in ranked]


def plot(rows: list[dict], baselines: list[dict], path: Path) -> None:
    """Validation macro-F1 (what chooses) against KDDTest+ accuracy (what it is for), one point
    per variant with its seed std as error bars, the base's baselines as reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ids_lightning.core.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for row in rows:
        x, y = row.get(f"{RANKED_BY}_mean"), row.get("test/acc_mean")
        if x is None or y is None:
            continue
        ax.errorbar(
            x, y, xerr=row.get(f"{RANKED_BY}_std") or 0, yerr=row.get("test/acc_std") or 0, fmt="o", capsize=3,
            color="tab:gray" if row["variant"] in UNRANKED else "tab:blue",
        )  # fmt: skip
        ax.annotate(f"{row['variant']}{' (ensemble)' if row['model'] == 'ensemble' else ''}", (x, y), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    for row, style in zip(baselines, ("--", ":")):
        ax.axhline(row["test/acc_mean"], linestyle=style, color="tab:red", label=f"{row['model']} (base rows)")
    ax.set_xlabel("validation macro-F1, mean of seeds (chooses)")
    ax.set_ylabel("KDDTest+ accuracy, mean of seeds (reported)")
    ax.set_title("NSL-KDD ablation: one setting changed per point (grey: other validation rows)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("outputs/ablation"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (the best on validation is tested)")
    parser.add_argument("--workers", type=int, default=2, help="runs at once, each on cores/workers threads")
    parser.add_argument("--data-dir", default=os.environ.get("IDS_DATA_DIR", "data"))
    parser.add_argument("overrides", nargs="*", help="train.py overrides for every run (e.g. debug=limit)")
    args = parser.parse_args(argv)
    from ids_lightning.analysis.ensemble import ensemble
    from ids_lightning.analysis.report import report

    jobs = plan(args.variants, args.seeds, args.epochs, args.runs_dir, args.overrides)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    started, failed = time.perf_counter(), []
    context = get_context("spawn")  # a fresh interpreter per worker: no forked torch threads
    with ProcessPoolExecutor(args.workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {
            pool.submit(one_run, overrides, folder, args.data_dir): (name, seed)
            for name, seed, overrides, folder in jobs
        }
        for number, future in enumerate(as_completed(futures), start=1):
            name, seed = futures[future]
            try:
                metrics = future.result()
                shown = f"val macro-F1 {metrics.get(RANKED_BY, float('nan')):.4f}"
            except Exception as err:  # one failed run is reported, not a lost ablation
                failed.append(f"{name} seed {seed}: {type(err).__name__}: {err}")
                shown = f"failed: {failed[-1]}"
            print(
                f"[{number}/{len(jobs)}, {time.perf_counter() - started:.0f} s] {name} seed {seed}: {shown}", flush=True
            )
    members = [args.runs_dir / "same_split" / f"s{seed}" for seed in args.seeds]
    combined = args.runs_dir / "same_split" / "ensemble"
    if (
        len(members) > 1
        and all((m / "metrics.json").is_file() for m in members)
        and not (combined / "metrics.json").is_file()
    ):
        ensemble(members, combined, args.data_dir)
    table = report([args.runs_dir])
    ranked = ranking(table)
    references = [r for r in table if r["model"] in BASELINES]
    plot(ranked, [r for r in references if r["experiment"] == "ablation+base"], args.runs_dir / "ablation.png")
    print(f"\nvariants by mean validation macro-F1 ({', '.join(sorted(UNRANKED))}: other validation rows, not ranked):")
    for row in ranked:
        values = [row.get(f"{m}_mean") for m in (RANKED_BY, "test/acc", "test/f1_macro", "test/binary_acc")]
        print(
            f"  {row['variant']:<16} {row['model']:<9} " + "  ".join("–" if v is None else f"{v:.4f}" for v in values)
        )
    if failed:
        raise DataError("failed runs:\n" + "\n".join(failed))
    return table


if __name__ == "__main__":
    sys.exit(exit_status(main))
