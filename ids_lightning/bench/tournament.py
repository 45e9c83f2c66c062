"""The tournament of docs/protocols.md: every candidate chosen on validation, refit, then tested.

``python -m ids_lightning.bench.tournament [--dataset nsl_kdd|iot23|bot_iot] [--validation ...]
[--seeds 1 2 3] [--grid full|cpu] [--epochs 50] [--runs-dir outputs/tournament]``
(``make tournament``). NSL-KDD is tested on KDDTest+ with ``by_family`` and ``random``
validation; IoT-23 leaves one malware family out at a time (four folds) with ``by_capture``
and ``random`` validation, and reports malicious F1 per seed; BoT-IoT has random validation only.

1. **Choose.** Every configuration of every family (CNN-LSTM, TabM, FT-Transformer: the grid of
   docs/protocols.md; LightGBM: an Optuna study per seed) is trained per seed with the
   validation protocol named (``dataset.val_split``), early stopping (patience 5) on validation
   macro-F1, and no test (``test=false``). A configuration's score is its seeds' mean best
   validation macro-F1, its epoch count the median of their best epochs (trees: the chosen
   trial's rounds). Each family's best configuration, and the best of all, are written to
   ``<runs-dir>/<dataset>/[<fold>/]<validation>/choice.json`` before anything is tested.
2. **Refit and test.** Each family's chosen configuration is trained again per seed on all
   training rows (``dataset.refit=true``: the validation rows too) for its chosen epochs, and
   that last epoch is tested; untuned gradient boosting on the same rows stands beside them.
   ``tournament.csv`` / ``tournament.md`` hold one row per validation protocol and family: the
   validation column that chose, then the test columns, mean ± std over seeds.

Re-running continues: finished runs (``metrics.json``) and a written choice are kept. The
``cpu`` grid is the subset this project's 2-core machine can afford (docs/protocols.md says which).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import DataError, exit_status
from ids_lightning.core.fileio import atomic_write_bytes, atomic_write_json, read_json_object
from ids_lightning.training.config import compose, instantiate
from ids_lightning.training.console import quiet

log = logging.getLogger(__name__)
FAMILIES = ("cnn_lstm", "tabm", "ft_transformer", "lightgbm")
REFERENCE = "hist_gradient_boosting"  # untuned, beside the chosen: never chosen
TREE_TRIALS = 30
PATIENCE = 5
BASE = [
    "experiment=official",
    "callbacks=default",
    "export=none",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    f"callbacks.early_stopping.patience={PATIENCE}",
]
TABULAR = ["dataset.categorical=embedding", "dataset.batch_size=256"]  # the tabular nets' own setting


def _grid(**axes: list) -> list[dict[str, object]]:
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


# docs/protocols.md, "The tournament": the only hyperparameters searched
GRIDS = {
    "full": {
        "cnn_lstm": [{}],
        "tabm": _grid(
            **{
                "model.net.blocks": [2, 3],
                "model.net.width": [256, 512],
                "model.optimizer.lr": [1e-3, 3e-4],
                "model.net.bins": [16, 48],
            },
        ),
        "ft_transformer": _grid(
            **{"model.net.layers": [2, 3], "model.net.d_token": [64, 192], "model.optimizer.lr": [1e-4, 3e-4]},
        ),
        "lightgbm": [{"trials": TREE_TRIALS}],
    },
    # what a 2-core CPU affords: one configuration per net family (the full grid's first), the trees'
    # study at a third of its trials
    "cpu": {
        "cnn_lstm": [{}],
        "tabm": [{"model.net.blocks": 2, "model.net.width": 256, "model.optimizer.lr": 1e-3, "model.net.bins": 16}],
        "ft_transformer": [{"model.net.layers": 2, "model.net.d_token": 64, "model.optimizer.lr": 1e-4}],
        "lightgbm": [{"trials": 10}],
    },
}
MODELS = {"cnn_lstm": ["model=cnn_lstm_wide"], "tabm": ["model=tabm", *TABULAR],
          "ft_transformer": ["model=ft_transformer", *TABULAR]}  # fmt: skip


# Each dataset's test folds (name -> overrides) and validation protocols. IoT-23 leaves one
# malware family out at a time (docs/windows.md); its captures-held-out validation takes the
# sensor's four CSV-export captures, less those the fold tests on.
SENSOR_VALIDATION = ["CTU-Honeypot-Capture-7-1", "CTU-IoT-Malware-Capture-20-1", "CTU-IoT-Malware-Capture-21-1",
                     "CTU-IoT-Malware-Capture-44-1"]  # fmt: skip
IOT23_FOLDS = {
    "torii": ["CTU-IoT-Malware-Capture-20-1", "CTU-IoT-Malware-Capture-21-1"],
    "mirai-34-1": ["CTU-IoT-Malware-Capture-34-1"],
    "trojan-42-1": ["CTU-IoT-Malware-Capture-42-1"],
    "mirai-44-1": ["CTU-IoT-Malware-Capture-44-1"],
}
VALIDATIONS = {"nsl_kdd": ("by_family", "random"), "bot_iot": ("random",), "iot23": ("by_capture", "random")}
POSITIVE = {"iot23": "malicious"}  # a binary task's attack class: its F1 is a column per seed


@dataclass(frozen=True)
class Protocol:
    """One test fold of a dataset under one validation protocol: the rows every candidate of a
    choice shares."""

    dataset: str
    validation: str
    fold: str = ""
    extra: tuple[str, ...] = ()

    def folder(self, runs_dir: Path) -> Path:
        return (
            runs_dir / self.dataset / self.fold / self.validation
            if self.fold
            else runs_dir / self.dataset / self.validation
        )


def protocols(dataset: str, validations: list[str], folds: list[str] | None = None) -> list[Protocol]:
    """Every (fold, validation) of ``dataset`` the tournament runs (IoT-23: of ``folds``, default all)."""
    if dataset != "iot23":
        return [Protocol(dataset, validation) for validation in validations]
    out = []
    for fold in folds or IOT23_FOLDS:
        tested = IOT23_FOLDS[fold]
        test = f"dataset.test_partitions=[{','.join(tested)}]"
        for validation in validations:
            extra = [test]
            if validation == "by_capture":
                extra.append(f"dataset.val_partitions=[{','.join(c for c in SENSOR_VALIDATION if c not in tested)}]")
            out.append(Protocol(dataset, validation, fold, tuple(extra)))
    return out


def config_id(family: str, config: dict) -> str:
    """A configuration's folder name: its family and settings."""
    parts = [f"{key.rsplit('.', 1)[-1]}{value:g}" if isinstance(value, float) else f"{key.rsplit('.', 1)[-1]}{value}"
             for key, value in sorted(config.items())]  # fmt: skip
    return "-".join([family, *parts])


def overrides(family: str, config: dict, protocol: Protocol, seed: int) -> list[str]:
    """``train.py`` overrides of one configuration's run with one seed under one protocol."""
    return [*BASE, f"dataset={protocol.dataset}", f"dataset.val_split={protocol.validation}", *protocol.extra,
            f"seed={seed}", *MODELS[family], *(f"{key}={value}" for key, value in config.items())]  # fmt: skip


def _train(arguments: list[str], folder: Path, data_dir: str) -> dict:
    """One run, or the metrics of the finished one in ``folder``."""
    from ids_lightning.training.run import train

    done = folder / "metrics.json"
    if done.is_file():
        return read_json_object(done, "a finished run's metrics.json")
    return train(compose(arguments, folder, data_dir=data_dir))


def _rows(arguments: list[str], data_dir: str, folder: Path):
    """The set-up datamodule of ``train.py arguments`` (what the trees fit on)."""
    cfg = compose(arguments, folder, data_dir=data_dir)
    datamodule = instantiate(cfg.dataset, output_dir=None)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def _tree_study(run: Path, protocol: Protocol, seed: int, trials: int, data_dir: str) -> dict:
    """One seed's Optuna study of LightGBM on the validation protocol's rows (kept in
    ``study.json``): the best trial's params, rounds and validation macro-F1, and every trial."""
    from ids_lightning.analysis import trees

    study = run / "study.json"
    if not study.is_file():
        datamodule = _rows(overrides("cnn_lstm", {}, protocol, seed), data_dir, run)
        train, val = trees.one_flow_rows(datamodule, "train"), trees.one_flow_rows(datamodule, "val")
        params, rounds, tried = trees.tune(train, val, datamodule.num_classes, seed, trees.TreeSearch(trials=trials))
        score = max(t["val/f1_macro"] for t in tried)
        atomic_write_json(study, {"params": params, "rounds": rounds, "val/f1_macro": score, "trials": tried})
    return read_json_object(study, "a tree study")


def _refit(family: str, candidate: dict, protocol: Protocol, seed: int) -> list[str]:
    """The refit's overrides: the chosen configuration on all training rows, no epoch chosen
    (the trees read the rows of the nets' dataset settings)."""
    net = family != "lightgbm"
    chosen = overrides(family if net else "cnn_lstm", candidate["settings"] if net else {}, protocol, seed)
    return [*chosen, "dataset.refit=true", "callbacks.early_stopping=null", "callbacks.model_checkpoint.monitor=null"]


def choose(protocol: Protocol, seeds: list[int], grid: str, epochs: int, runs_dir: Path, data_dir: str,
           families: tuple[str, ...] = FAMILIES) -> dict:  # fmt: skip
    """Stage 1: every candidate's validation score; the choice, written before any test."""
    folder = protocol.folder(runs_dir)
    written = folder / "choice.json"
    if written.is_file():
        return read_json_object(written, "a tournament choice")
    candidates = []
    for family in families:
        for config in GRIDS[grid][family]:
            name, scores, best_epochs, settings = config_id(family, config), [], [], []
            for seed in seeds:
                run = folder / "choose" / name / f"s{seed}"
                if family == "lightgbm":
                    record = _tree_study(run, protocol, seed, int(config["trials"]), data_dir)
                    scores.append(record["val/f1_macro"])
                    best_epochs.append(record["rounds"])
                    settings.append(record["params"])
                else:
                    arguments = [*overrides(family, config, protocol, seed), f"trainer.max_epochs={epochs}",
                                 "test=false"]  # fmt: skip
                    metrics = _train(arguments, run, data_dir)
                    scores.append(metrics["val/f1_macro_best"])
                    best_epochs.append(metrics["best_epoch"] + 1)
                log.info("%s %s seed %d: validation macro-F1 %.4f", protocol, name, seed, scores[-1])
            candidate = {
                "family": family,
                "config": name,
                "settings": config,
                "val/f1_macro_mean": statistics.mean(scores),
                "val/f1_macro_std": statistics.stdev(scores) if len(scores) > 1 else None,
                "val/f1_macro_per_seed": scores,
                "epochs": round(statistics.median(best_epochs)),
            }
            if family == "lightgbm":  # the seeds' studies: the trial with the best validation score
                candidate["tree_params"] = settings[int(np.argmax(scores))]
                candidate["epochs"] = best_epochs[int(np.argmax(scores))]
            candidates.append(candidate)
    winners = {f: max((c for c in candidates if c["family"] == f), key=lambda c: c["val/f1_macro_mean"])
               for f in families}  # fmt: skip
    choice = {
        "dataset": protocol.dataset,
        "fold": protocol.fold,
        "extra": list(protocol.extra),
        "validation": protocol.validation,
        "seeds": seeds,
        "grid": grid,
        "rule": "the highest mean best validation macro-F1 over the seeds; no test metric was computed",
        "candidates": candidates,
        "family_winners": {f: c["config"] for f, c in winners.items()},
        "chosen": max(winners.values(), key=lambda c: c["val/f1_macro_mean"])["config"],
    }
    atomic_write_json(written, choice)
    return choice


def refit_and_test(choice: dict, runs_dir: Path, data_dir: str) -> list[dict]:
    """Stage 2: each family's chosen configuration refit on all training rows, tested; one row
    per family (and the untuned reference)."""
    from ids_lightning.analysis import trees
    from ids_lightning.analysis.baseline import fit_baseline

    protocol = Protocol(choice["dataset"], choice["validation"], choice.get("fold", ""), tuple(choice.get("extra", ())))
    seeds, folder = choice["seeds"], protocol.folder(runs_dir) / "refit"
    by_name = {c["config"]: c for c in choice["candidates"]}
    rows = []
    for family, name in choice["family_winners"].items():
        candidate, results = by_name[name], []
        for seed in seeds:
            run = folder / name / f"s{seed}"
            refit = _refit(family, candidate, protocol, seed)
            if family == "lightgbm":
                done = run / "metrics.json"
                if not done.is_file():
                    datamodule = _rows(refit, data_dir, run)
                    train = trees.one_flow_rows(datamodule, "train")
                    classifier = trees.fit(candidate["tree_params"], candidate["epochs"], *train, seed)
                    atomic_write_json(done, trees.test_scores(classifier, datamodule))
                results.append(read_json_object(done, "a refit's metrics.json"))
            else:
                results.append(_train([*refit, f"trainer.max_epochs={candidate['epochs']}"], run, data_dir))
        rows.append(_row(choice, family, candidate, results))
    reference = []
    for seed in seeds:
        done = folder / REFERENCE / f"s{seed}" / "metrics.json"
        if not done.is_file():
            refit = [*overrides("cnn_lstm", {}, protocol, seed), "dataset.refit=true"]
            atomic_write_json(done, fit_baseline(REFERENCE, _rows(refit, data_dir, done.parent), seed, []))
        reference.append(read_json_object(done, "a reference's metrics.json"))
    rows.append(_row(choice, REFERENCE, {"config": "untuned (reference, never chosen)"}, reference))
    return rows


TEST_COLUMNS = ("test/acc", "test/binary_acc", "test/f1_macro")


def _row(choice: dict, family: str, candidate: dict, results: list[dict]) -> dict:
    row = {
        "dataset": choice["dataset"],
        "fold": choice.get("fold") or "–",
        "validation": choice["validation"],
        "family": family,
        "config": candidate["config"],
        "chosen": candidate["config"] == choice["chosen"],
        "val/f1_macro_mean": candidate.get("val/f1_macro_mean"),
        "val/f1_macro_std": candidate.get("val/f1_macro_std"),
        "epochs_or_rounds": candidate.get("epochs"),
        "seeds": len(results),
    }
    for column in TEST_COLUMNS:
        values = [r[column] for r in results if r.get(column) is not None]
        row[f"{column}_mean"] = statistics.mean(values) if values else None
        row[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else None
    positive = POSITIVE.get(choice["dataset"])
    if positive:  # a class with test rows that is never predicted has F1 0
        per_seed = [r.get(f"test/f1/{positive}") or 0.0 for r in results]
        row[f"test/f1/{positive}_per_seed"] = ", ".join(f"{v:.3f}" for v in per_seed)
        row[f"test/f1/{positive}_mean"] = statistics.mean(per_seed)
    return row


def write(rows: list[dict], runs_dir: Path) -> None:
    columns = list(rows[0])
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(runs_dir / "tournament.csv", text.getvalue().encode())

    def cell(value: object) -> str:
        return "–" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    atomic_write_bytes(runs_dir / "tournament.md", ("\n".join(lines) + "\n").encode())


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="nsl_kdd", choices=list(VALIDATIONS))
    parser.add_argument("--validation", nargs="+", choices=["by_family", "by_capture", "random"],
                        help="default: the dataset's (NSL-KDD: by_family random)")  # fmt: skip
    parser.add_argument("--folds", nargs="+", choices=list(IOT23_FOLDS), help="IoT-23's folds (default: all four)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--grid", default="full", choices=list(GRIDS))
    parser.add_argument("--epochs", type=int, default=50, help="at most, with early stopping (patience 5)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--runs-dir", type=Path, default=Path("outputs/tournament"))
    parser.add_argument("--data-dir", default=os.environ.get("IDS_DATA_DIR", "data"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet()
    started, rows = time.perf_counter(), []
    families = tuple(f for f in FAMILIES if f in args.families)
    validations = args.validation or list(VALIDATIONS[args.dataset])
    for protocol in protocols(args.dataset, validations, args.folds):
        choice = choose(protocol, args.seeds, args.grid, args.epochs, args.runs_dir, args.data_dir, families)
        print(f"{protocol}: chose {choice['chosen']} (family winners: {choice['family_winners']})", flush=True)
        rows += refit_and_test(choice, args.runs_dir, args.data_dir)
    if not rows:
        raise DataError("the tournament trained nothing")
    write(rows, args.runs_dir)
    print((args.runs_dir / "tournament.md").read_text())
    print(f"{time.perf_counter() - started:.0f} s; written to {args.runs_dir}")
    return rows


if __name__ == "__main__":
    sys.exit(exit_status(main))
