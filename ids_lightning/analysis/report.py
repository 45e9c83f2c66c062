"""Gather the runs of one or more sweeps into a comparison table and figures.

``python -m ids_lightning.cli.report outputs/multirun/<sweep> [...]`` reads every ``metrics.json``
(and ``evaluation.json``, ``bench.json`` where present) below the given folders and writes, into
the first folder (or ``--output``): ``report.csv`` (one row per model × dataset × split ×
validation × window × experiment, with ``n_seeds`` and ``<metric>_mean`` / ``<metric>_std``, the std empty for one
seed), ``report.md``, and one figure per dataset, split and experiment overlaying the models'
validation accuracy and loss per epoch and their macro-average ROC curves. The table is printed too.

Every deep-model row stands beside its classical references: for each dataset × split ×
validation × window × experiment × seed of the deep runs that the folders do not already hold a ``random_forest``
and a ``hist_gradient_boosting`` run of, the report fits them itself on that run's rows (its
saved config rebuilds the same DataModule) and writes their ``metrics.json`` under
``<output>/baselines/`` (found again by the next report; ``--no-baselines`` skips this).
With ``--ensembles`` each deep row of two or more seeds gains an ``ensemble`` row: its seeds'
runs averaged in one ONNX graph (:mod:`ids_lightning.analysis.ensemble`), built once under
``<output>/ensembles/``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from ids_lightning.analysis.baseline import BASELINES, fit_baseline
from ids_lightning.analysis.trees import MODEL as TUNED_TREES
from ids_lightning.analysis.trees import TreeSearch, tuned_run
from ids_lightning.core import provenance
from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    output_folder,
    read_json_object,
)

# A row is one protocol: the experiment (its tags, e.g. paper or official) as well as the split,
# since two experiments can share a split with other preprocessing (BoT-IoT is random in both).
KEYS = ("model", "dataset", "split", "val_split", "window", "experiment")
METRICS = [
    "val/f1_macro_best",  # what selected the tested checkpoint (a baseline's single fit: its val/f1_macro)
    "test/acc",
    "test/f1_macro",
    "test/auroc",
    "test/ap_macro",
    "test/binary_acc",
    "test/novel_types/detected",
    "test/known_types/detected",
    # host level (runs validated on whole captures): the sensor's incidents replayed on the test captures
    "test/incidents/infected_detected",
    "test/incidents/time_to_detect_median_s",
    "test/incidents/false_incidents_per_host_day",
    "test_adv/pgd/eps_0.1/acc",
    "n_params",
    "fit_seconds",
    "onnx/batch1_p50_us",
]


def collect(folders: list[Path]) -> list[dict]:
    """One record per finished run: its metrics plus the run folder."""
    runs = []
    for folder in folders:
        for path in sorted(folder.rglob("metrics.json")):
            metrics = read_json_object(path, "a metrics.json of a finished run")
            bench = path.parent / "bench.json"
            if os.path.lexists(bench):  # a pipe or a link to nothing is refused, not skipped
                rows = read_json_object(bench, "an edge bench report").get("results")
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise DataError(f"{bench}: not an edge bench report ('results' must list its rows)")
                fp32 = [r for r in rows if r.get("engine") == "onnx_fp32" and r.get("threads") == 1]
                if fp32:
                    metrics["onnx/batch1_p50_us"] = fp32[0]["batch1_p50_us"]
            metrics["experiment"] = "+".join(metrics.get("tags") or _config_tags(path.parent))
            made = provenance.read(path.parent) or {}
            origin = {key: made.get(key) for key in ("commit", "dirty", "data_sha256")}
            runs.append({**with_defaults(metrics), **origin, "run_dir": str(path.parent)})
    if not runs:
        raise DataError(f"no metrics.json found under {', '.join(map(str, folders))}")
    return runs


def with_defaults(metrics: dict) -> dict:
    """Keys older runs and baselines lack, as the report compares them."""
    metrics.setdefault("window", 1)  # runs from before windows saw one flow
    metrics.setdefault("val_split", "random")  # and validated on a random share
    if "val/f1_macro" in metrics:  # a baseline's single fit: its validation score selected nothing else
        metrics.setdefault("val/f1_macro_best", metrics["val/f1_macro"])
    return metrics


def _config_tags(run_dir: Path) -> list[str]:
    """Tags of a run whose metrics.json predates the ``tags`` key, from its saved config (read as
    data: YAML's safe loader, no interpolation, plain strings only)."""
    if not os.path.lexists(run_dir / "config.yaml"):
        return []
    from ids_lightning.training.run_folder import read_config

    tags = read_config(run_dir).get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise DataError(f"{run_dir / 'config.yaml'}: tags must be a list of strings")
    return tags


def cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string that would start a formula gets a quote."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def markdown_cell(value: object) -> str:
    """A Markdown table cell that stays one cell on one row."""
    return " ".join(str(value).split()).replace("|", "\\|")


def file_part(value: object) -> str:
    """A piece of a file name from run data: letters, digits, ``.``, ``-`` and ``_`` only, so a
    name read from a metrics.json never leaves the output folder."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in str(value))
    return cleaned.lstrip(".") or "_"


def summarise(runs: list[dict], metrics: list[str], allow_mixed_data: bool = False) -> list[dict]:
    """One row per protocol: the mean and std over its runs, and the commits and data that made
    them (from each run's provenance.json). Runs of one row made from different data files are
    refused unless ``allow_mixed_data``: a mean over them would hide it."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[tuple(run.get(k) for k in KEYS)].append(run)
    table = []
    for key in sorted(groups, key=lambda k: tuple(str(v) for v in k)):
        members = groups[key]
        row = dict(zip(KEYS, key)) | {"n_seeds": len({m.get("seed") for m in members})}
        row |= traced(members, allow_mixed_data)
        for metric in metrics:
            values = [m[metric] for m in members if isinstance(m.get(metric), (int, float))]
            if values:
                row[f"{metric}_mean"] = float(np.mean(values))
                row[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        table.append(row)
    return table


def traced(members: list[dict], allow_mixed_data: bool) -> dict:
    """A row's ``commit`` (short; ``+dirty`` with uncommitted changes; several joined) and
    ``data`` (the short data hash, ``mixed``, or ``–`` where no run recorded one: baselines fitted
    here, runs from before provenance)."""
    data = sorted({m["data_sha256"] for m in members if m.get("data_sha256")})
    if len(data) > 1 and not allow_mixed_data:
        by_hash = {h[:12]: [m["run_dir"] for m in members if m.get("data_sha256") == h] for h in data}
        shown = "; ".join(f"{h}: {', '.join(runs[:2])}{' ...' if len(runs) > 2 else ''}" for h, runs in by_hash.items())
        raise DataError(
            f"runs of one report row ({members[0].get('model')}, {members[0].get('dataset')}) were made from different "
            f"data files ({shown}): report them apart, or pass --allow-mixed-data to average them anyway"
        )
    commits = sorted({m["commit"][:8] + ("+dirty" if m.get("dirty") else "") for m in members if m.get("commit")})
    return {"commit": " ".join(commits) or None, "data": ("mixed" if len(data) > 1 else data[0][:12]) if data else None}


def to_csv(table: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in table for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: cell(value) for key, value in row.items()} for row in table)
    return buffer.getvalue()


def to_markdown(table: list[dict], metrics: list[str]) -> str:
    shown = [m for m in metrics if any(f"{m}_mean" in row for row in table)]
    header = [*KEYS, "seeds", "commit", "data", *shown]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        cells = [markdown_cell(row[k] or "–") for k in KEYS] + [str(row["n_seeds"])]
        cells += [markdown_cell(row.get("commit") or "–"), markdown_cell(row.get("data") or "–")]
        for metric in shown:
            mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
            if mean is None:
                cells.append("–")
            elif metric in ("n_params",):
                cells.append(f"{mean:,.0f}")
            else:
                digits = ",.1f" if metric in ("fit_seconds", "onnx/batch1_p50_us") else ".4f"
                cells.append(f"{mean:{digits}}" + ("" if std is None else f" ± {std:{digits}}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _macro_roc(roc: dict) -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(0, 1, 101)
    curves = [np.interp(grid, c["fpr"], c["tpr"]) for c in roc.values() if len(c["fpr"]) > 1]
    return grid, np.mean(curves, axis=0) if curves else np.full_like(grid, np.nan)


def figures(runs: list[dict], output: Path) -> list[Path]:
    """Per dataset and split: validation accuracy and loss per epoch (mean over seeds) and the
    macro-average ROC, one line per model (the seed paper's figures 2-5, side by side)."""
    by_key: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        evaluation = Path(run["run_dir"]) / "evaluation.json"
        if evaluation.is_file():
            key = (run["dataset"], run["split"], run["experiment"])
            by_key[key][run["model"]].append(read_json_object(evaluation, "a run's evaluation.json"))
    written = []
    for (dataset, split, experiment), models in sorted(by_key.items()):
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
        for model, evaluations in sorted(models.items()):
            for ax, key in zip(axes[:2], ("val/acc", "val/loss")):
                epochs = max(len(e["history"]) for e in evaluations)
                mean = [
                    np.nanmean(
                        [
                            e["history"][i][key]
                            if i < len(e["history"]) and e["history"][i][key] is not None
                            else np.nan
                            for e in evaluations
                        ]
                    )
                    for i in range(epochs)
                ]
                ax.plot(range(1, epochs + 1), mean, marker="o", markersize=2, label=model)  # epochs from 1
            grid, tpr = zip(*[_macro_roc(e["roc"]) for e in evaluations])
            axes[2].plot(grid[0], np.mean(tpr, axis=0), label=model)
        for ax, title in zip(axes, ("validation accuracy", "validation loss", "test ROC (macro over classes)")):
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        for ax in axes[:2]:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[2].set_xlabel("false positive rate")
        axes[2].plot([0, 1], [0, 1], "k--", linewidth=0.8)
        fig.suptitle(f"{dataset}, {split} split{f', experiment {experiment}' if experiment else ''} (mean over seeds)")
        fig.tight_layout()
        name = "_".join(file_part(part) for part in (dataset, split, experiment) if part)
        path = output / f"report_{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def protocol(run: dict) -> tuple:
    """What a baseline must share with a deep run to stand beside it: the same rows."""
    return (
        run.get("dataset"),
        run.get("split"),
        run.get("val_split", "random"),
        run.get("window", 1),
        run.get("experiment"),
        run.get("seed"),
    )


def missing_baselines(runs: list[dict], models: tuple[str, ...] = BASELINES) -> dict[tuple, tuple[dict, list[str]]]:
    """Per protocol of the deep runs (dataset, split, validation, window, experiment, seed): one
    of its runs and the baselines no run of it holds."""
    held: dict[tuple, set[str]] = defaultdict(set)
    for run in runs:
        held[protocol(run)].add(run.get("model"))
    missing = {}
    for run in runs:
        if run.get("seed") is None:  # an ensemble of seeds: its members have their own rows
            continue
        key = protocol(run)
        lacking = [m for m in models if m not in held[key]]
        if run.get("model") not in models and lacking and key not in missing:
            missing[key] = (run, lacking)
    return missing


def add_baselines(runs: list[dict], output: Path, tree_trials: int = 0) -> list[dict]:
    """Fit the missing baselines (see :func:`missing_baselines`); their run records. Protocols
    whose runs read the same rows (the same ``dataset`` config and seed: e.g. an ablation's
    loss and width variants) share one fit, recorded under each protocol. With ``tree_trials``
    LightGBM tuned in that many trials on validation (:mod:`ids_lightning.analysis.trees`) is
    one of them, for one-flow protocols; its folder is a deployable run folder."""
    from ids_lightning.training.run_folder import (  # the training stack, only when fitting
        build_datamodule,
        read_config,
        rows_config,
    )

    added, fitted = [], {}
    models = (*BASELINES, TUNED_TREES) if tree_trials else BASELINES
    for key, (run, lacking) in missing_baselines(runs, models).items():
        dataset, split, val_split, window, experiment, seed = key
        if window != 1:
            lacking = [m for m in lacking if m != TUNED_TREES]  # tuned trees read one flow per sample
        run_dir = Path(run["run_dir"])
        try:
            config = read_config(run_dir)
        except DataError as err:  # a folder without its config
            print(f"warning: no baselines for {dataset}, {split} split, seed {seed}: {err}")
            continue
        rows = json.dumps([rows_config(config), seed], sort_keys=True, default=str)
        folder = output / "baselines" / f"{dataset}_{split}_{val_split}_w{window}_{experiment or 'none'}_s{seed}"
        datamodule = None
        for model in lacking:
            if (rows, model) not in fitted:
                if datamodule is None:
                    try:
                        datamodule = build_datamodule(config, run_dir / "config.yaml")
                        datamodule.setup("fit")
                    except DataError as err:  # data no longer there
                        print(f"warning: no baselines for {dataset}, {split} split, seed {seed}: {err}")
                        break
                print(
                    f"fitting {model} for {dataset}, {split} split, window {window}, {experiment or '-'}, seed {seed}"
                )
                if model == TUNED_TREES:
                    search = TreeSearch(trials=tree_trials)
                    fitted[rows, model] = tuned_run(datamodule, int(seed), folder / model, search)
                else:
                    fitted[rows, model] = fit_baseline(model, datamodule, int(seed), [])
            summary = fitted[rows, model] | {"tags": list(run.get("tags") or [])}
            atomic_write_json(folder / model / "metrics.json", summary)
            added.append({**with_defaults(summary), "experiment": experiment, "run_dir": str(folder / model)})
    return added


def add_ensembles(runs: list[dict], output: Path) -> list[dict]:
    """For each deep row with two or more seeds, the ensemble of its seeds' runs (one ONNX graph
    averaging their probabilities) under ``<output>/ensembles/``, unless the folders hold it."""
    from ids_lightning.analysis.ensemble import ensemble  # the training stack, only when building

    held = {tuple(sorted(run.get("members") or [])) for run in runs if run.get("model") == "ensemble"}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        if run.get("seed") is not None and run.get("model") not in (*BASELINES, TUNED_TREES, "ensemble"):
            groups[tuple(run.get(k) for k in KEYS)].append(run)
    added = []
    for key, members in sorted(groups.items(), key=lambda item: tuple(map(str, item[0]))):
        run_dirs = sorted({m["run_dir"] for m in members})
        if len(run_dirs) < 2 or tuple(run_dirs) in held:
            continue
        folder = output / "ensembles" / "_".join(str(v) for v in key if v is not None)
        print(f"building the ensemble of {len(run_dirs)} seeds: {', '.join(f'{k} {v}' for k, v in zip(KEYS, key))}")
        try:
            summary = ensemble([Path(d) for d in run_dirs], folder)
        except DataError as err:  # e.g. quantile-scaled members: reported, not fatal
            print(f"warning: no ensemble for {key}: {err}")
            continue
        added.append({**with_defaults(summary), "experiment": key[KEYS.index("experiment")], "run_dir": str(folder)})
    return added


def importance_comparison(runs: list[dict], top: int = 5) -> str | None:
    """Markdown: per protocol (seeds averaged) and class, the features with the largest mean
    contribution to the class over its test rows (each run's ``importance.json``), and the
    possible shortcuts the runs flagged; None where no run has the file."""
    by_protocol: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        path = Path(run["run_dir"]) / "importance.json"
        if "run_dir" in run and os.path.lexists(path):
            by_protocol[tuple(run.get(k) for k in KEYS)].append(_importance(path))
    if not by_protocol:
        return None
    lines = ["| " + " | ".join([*KEYS, "seeds", "class", f"top {top} features (mean contribution)"]) + " |",
             "|" + "---|" * (len(KEYS) + 3)]  # fmt: skip
    shortcuts = []
    for key in sorted(by_protocol, key=lambda k: tuple(str(v) for v in k)):
        members = by_protocol[key]
        for name in dict.fromkeys(c for m in members for c in m["classes"]):
            totals: dict[str, list[float]] = defaultdict(list)
            for member in members:
                for feature, value in member["classes"].get(name, {}).get("mean_contribution", {}).items():
                    totals[feature].append(value)
            ranked = sorted(((np.mean(v), f) for f, v in totals.items()), reverse=True)[:top]
            cells = [markdown_cell(v or "–") for v in key]
            listed = ", ".join(f"{markdown_cell(f)} {v:+.3f}" for v, f in ranked if v > 0) or "–"
            lines.append(f"| {' | '.join(cells)} | {len(members)} | {markdown_cell(name)} | {listed} |")
        shortcuts += [(key, s) for m in members for s in m.get("possible_shortcuts", [])]
    if shortcuts:
        lines += ["", "Possible shortcuts (a feature that holds most attributions on one capture only):", ""]
        lines += [f"- {markdown_cell(key[0])} on {markdown_cell(key[1])}: {markdown_cell(s['feature'])} holds "
                  f"{100 * s['share']:.0f}% on {markdown_cell(s['capture'])}, at most "
                  f"{100 * s['share_elsewhere']:.0f}% elsewhere" for key, s in shortcuts]  # fmt: skip
    return "\n".join(lines) + "\n"


def _importance(path: Path) -> dict:
    """A run's importance.json, checked to be the shape this project writes (it is read as data)."""
    state = read_json_object(path, "a run's feature importance")
    try:
        classes = {
            str(name): {"mean_contribution": {str(f): float(v) for f, v in entry["mean_contribution"].items()}}
            for name, entry in state["classes"].items()
        }
        shortcuts = [
            {"feature": str(s["feature"]), "capture": str(s["capture"]), "share": float(s["share"]),
             "share_elsewhere": float(s["share_elsewhere"])}
            for s in state.get("possible_shortcuts", [])
        ]  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: not the feature importance this project writes ({err})") from err
    return {"classes": classes, "possible_shortcuts": shortcuts}


def report(
    folders: list[Path],
    output: Path | None = None,
    metrics: list[str] | None = None,
    baselines: bool = True,
    ensembles: bool = False,
    tree_trials: int = 0,
    allow_mixed_data: bool = False,
) -> list[dict]:
    metrics = metrics or METRICS
    output = output or folders[0]
    output_folder(output)
    runs = collect(folders)
    if ensembles:
        runs += add_ensembles(runs, output)
    if baselines:
        runs += add_baselines(runs, output, tree_trials)
    table = summarise(runs, metrics, allow_mixed_data)
    atomic_write_bytes(output / "report.csv", to_csv(table).encode())
    markdown = to_markdown(table, metrics)
    atomic_write_bytes(output / "report.md", markdown.encode())
    figures(runs, output)
    importance = importance_comparison(runs)
    if importance is not None:
        atomic_write_bytes(output / "importance.md", importance.encode())
    print(markdown)
    print(f"{len(runs)} runs; written to {output}")
    return table
