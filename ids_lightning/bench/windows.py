"""Do windows help on captures of a family never seen in training? The windows evaluation.

``python -m ids_lightning.bench.windows --output outputs/bench/windows.json`` trains, for each
held-out set of IoT-23 captures (by default: the Torii captures, the ``by_capture`` protocol,
then each other malicious family in turn: leave-one-family-out), each model at each window
size and seed, and a gradient-boosting baseline on flow features alone and on flow + host-
context features; then BoT-IoT's full-feature sample on its random (block) split. Every run is
selected on validation (early stopping on validation macro-F1) and scored once on its test
captures: malicious F1, recall and the benign false-alarm rate. Writes every run and the table
of means ± std (``--table``, CSV) that ``make results`` renders.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_write_bytes, atomic_write_json
from ids_lightning.training.config import QUIET, compose
from ids_lightning.training.console import quiet

# held-out set name -> (dataset, overrides); captures of one family are held out together, so
# the family stays unseen (the two Torii captures come from the same device and malware)
FOLDS = {
    "iot23:torii (by_capture)": (
        "iot23",
        ["dataset.test_partitions=[CTU-IoT-Malware-Capture-20-1,CTU-IoT-Malware-Capture-21-1]"],
    ),
    "iot23:mirai-34-1": ("iot23", ["dataset.test_partitions=[CTU-IoT-Malware-Capture-34-1]"]),
    "iot23:trojan-42-1": ("iot23", ["dataset.test_partitions=[CTU-IoT-Malware-Capture-42-1]"]),
    "iot23:mirai-44-1": ("iot23", ["dataset.test_partitions=[CTU-IoT-Malware-Capture-44-1]"]),
    "bot_iot:full-feature sample (random)": (
        "bot_iot",
        ["dataset.files=[bot_iot/bot_iot_fullfeatures_normal_ddos_sample.csv.gz]", "dataset.task=binary"],
    ),
}
POSITIVE = {"iot23": "malicious", "bot_iot": "attack"}
BASELINE = "hist_gradient_boosting"  # on flow features, and on flow + context features
NEGATIVE = {"iot23": "benign", "bot_iot": "normal"}


def run_scores(metrics: dict, dataset: str) -> dict:
    """Malicious F1 and recall, benign false-alarm rate, and validation macro-F1 of one run
    (None where the test rows hold no flow of the class)."""
    positive, negative = POSITIVE[dataset], NEGATIVE[dataset]
    recall_negative = metrics.get(f"test/recall/{negative}")
    f1, recall = metrics.get(f"test/f1/{positive}"), metrics.get(f"test/recall/{positive}")
    if recall is not None and f1 is None:  # rows of the class, never predicted: F1 is 0
        f1 = 0.0
    return {
        "f1": f1 if recall is not None else None,
        "recall": metrics.get(f"test/recall/{positive}"),
        "false_alarm_rate": None if recall_negative is None else 1.0 - recall_negative,
        "val_f1_macro": metrics.get("val/f1_macro"),
        "test_f1_macro": metrics.get("test/f1_macro"),
    }


def one_run(model: str, dataset: str, overrides: list[str], folder: Path, data_dir: str) -> dict:
    from ids_lightning.analysis.baseline import baseline
    from ids_lightning.training.run import train

    if model == BASELINE:
        return baseline([f"dataset={dataset}", *overrides, *QUIET], folder, models=(BASELINE,))[0]
    return train(compose([f"dataset={dataset}", *overrides, *QUIET], folder, data_dir=data_dir))


def configurations(models: list[str], windows: list[int], baseline_window: int) -> list[dict]:
    """(model, window, context) to run on every fold: each deep model at each window, and the
    baseline on flow features, then on flow + context features over ``baseline_window`` flows."""
    runs = [{"model": m, "window": w, "context": False} for m in models for w in windows]
    runs += [
        {"model": BASELINE, "window": 1, "context": False},
        {"model": BASELINE, "window": baseline_window, "context": True},
    ]
    return runs


def summarise(rows: list[dict]) -> list[dict]:
    """Mean ± sample std over seeds per fold and configuration (as the report computes them),
    then the leave-one-family-out mean of the IoT-23 folds."""
    table, keys = [], []
    for row in rows:
        key = (row["fold"], row["model"], row["window"], row["context"])
        if key not in keys:
            keys.append(key)
    for key in keys:
        group = [r for r in rows if (r["fold"], r["model"], r["window"], r["context"]) == key and "error" not in r]
        entry = dict(zip(("fold", "model", "window", "context"), key))
        entry["seeds"] = len(group)
        for metric in ("f1", "recall", "false_alarm_rate", "val_f1_macro"):
            values = [r[metric] for r in group if r.get(metric) is not None]
            entry[f"{metric}_mean"] = float(np.mean(values)) if values else None
            entry[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        entry["f1_per_seed"] = [None if r["f1"] is None else round(r["f1"], 3) for r in group]
        table.append(entry)
    iot = [e for e in table if e["fold"].startswith("iot23:")]
    for config in dict.fromkeys((e["model"], e["window"], e["context"]) for e in iot):
        folds = [e for e in iot if (e["model"], e["window"], e["context"]) == config and e["f1_mean"] is not None]
        table.append(
            {
                "fold": f"iot23: mean of {len(folds)} held-out families",
                **dict(zip(("model", "window", "context"), config)),
                "seeds": min((e["seeds"] for e in folds), default=0),
                "f1_mean": float(np.mean([e["f1_mean"] for e in folds])) if folds else None,
                "recall_mean": float(np.mean([e["recall_mean"] for e in folds])) if folds else None,
                "false_alarm_rate_mean": float(np.mean([e["false_alarm_rate_mean"] for e in folds])) if folds else None,
            }
        )
    return table


def write_table(table: list[dict], path: Path) -> None:
    columns = ["fold", "model", "window", "context", "seeds", "f1_mean", "f1_std", "f1_per_seed", "recall_mean"]
    columns += ["false_alarm_rate_mean", "val_f1_macro_mean"]

    def cell(value: object) -> str:
        if isinstance(value, list):
            return " / ".join("–" if v is None else f"{v:.3f}" for v in value)
        if isinstance(value, float):
            return f"{value:.4f}"
        return "" if value is None else str(value)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell(entry.get(column)) for column in columns] for entry in table)
    atomic_write_bytes(path, buffer.getvalue().encode())


def rescore(output: Path, table_path: Path) -> list[dict]:
    """The scores and table again from each listed run's ``metrics.json`` (after a change to
    how a score is read; nothing is retrained)."""
    data = json.loads(output.read_text())
    for row in data["runs"]:
        metrics_file = Path(row["run"]) / "metrics.json"
        if "error" not in row and metrics_file.is_file():
            row |= run_scores(json.loads(metrics_file.read_text()), FOLDS[row["fold"]][0])
    data["table"] = summarise(data["runs"])
    atomic_write_json(output, data)
    write_table(data["table"], table_path)
    print(f"rescored {len(data['runs'])} runs: {output}, {table_path}")
    return data["table"]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("outputs/bench/windows.json"))
    parser.add_argument("--table", type=Path, default=None, help="CSV of means ± std (default: beside --output)")
    parser.add_argument("--runs-dir", type=Path, default=Path("outputs/bench/windows_runs"))
    parser.add_argument("--folds", nargs="+", default=list(FOLDS), choices=list(FOLDS), metavar="FOLD")
    parser.add_argument("--models", nargs="+", default=["cnn_lstm"])
    parser.add_argument("--windows", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--baseline-window", type=int, default=32, help="flows the baseline's context covers")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per deep run (best on validation kept)")
    parser.add_argument("--data-dir", default=os.environ.get("IDS_DATA_DIR", "data"))
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="rebuild --output and the table from the metrics.json of the runs --output lists",
    )
    args = parser.parse_args(argv)
    table_path = args.table or args.output.with_suffix(".csv")
    if args.rescore:
        return rescore(args.output, table_path)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    quiet()
    rows: list[dict] = []
    settings = ["dataset.scaler=log_minmax", "dataset.categorical=label", f"trainer.max_epochs={args.epochs}"]
    settings += ["export=none"]
    plan = [
        (fold, config, seed)
        for fold in args.folds
        for config in configurations(args.models, args.windows, args.baseline_window)
        for seed in args.seeds
    ]
    started = time.perf_counter()
    for number, (fold, config, seed) in enumerate(plan, start=1):
        dataset, fold_overrides = FOLDS[fold]
        overrides = [
            *fold_overrides,
            *settings,
            f"dataset.window={config['window']}",
            f"dataset.context={str(config['context']).lower()}",
            f"seed={seed}",
        ]
        if config["model"] != BASELINE:
            overrides.append(f"model={config['model']}")
        name = f"{fold.split(' ')[0].replace(':', '_')}_{config['model']}_w{config['window']}"
        folder = args.runs_dir / f"{name}{'_ctx' if config['context'] else ''}_s{seed}"
        row = {"fold": fold, **config, "seed": seed, "run": str(folder)}
        try:
            metrics = one_run(config["model"], dataset, overrides, folder, args.data_dir)
            row |= run_scores(metrics, dataset) | {"fit_seconds": metrics.get("fit_seconds")}
        except Exception as err:  # one failed run is a row that says why, not a lost sweep
            row["error"] = f"{type(err).__name__}: {err}"
        rows.append(row)
        shown = row.get("error") or f"F1 {row['f1']}" if row.get("f1") is None else f"F1 {row['f1']:.3f}"
        print(
            f"[{number}/{len(plan)}, {time.perf_counter() - started:.0f} s] {fold} {config['model']} "
            f"T={config['window']}{' +ctx' if config['context'] else ''} seed {seed}: {shown}",
            flush=True,
        )
        atomic_write_json(args.output, {"settings": settings, "runs": rows})
    table = summarise(rows)
    atomic_write_json(args.output, {"settings": settings, "runs": rows, "table": table})
    write_table(table, table_path)
    print(f"wrote {args.output} and {table_path}")
    print(json.dumps(table, indent=1))
    return table


if __name__ == "__main__":
    sys.exit(exit_status(main))
