"""Seed ensembles: ``python -m ids_lightning.cli.ensemble RUN... --output DIR`` (``ids ensemble``).

Averages the class probabilities of N finished runs in one ONNX graph, written to a run folder
(``preprocess.json``, ``model.onnx``, ``model.int8.onnx``, ``metrics.json``) that the detector
and the edge bench take like any other. Runs of different seeds fit their preprocessing on
different training rows, so their scalers differ: the ensemble reads inputs preprocessed by the
first run's ``preprocess.json`` and maps them, inside the graph, onto each member's own scaling
(exact for values inside the first run's training range, beyond which they were clipped
first; a label-encoded category the first run never saw reaches every member as unknown).
Members must agree on everything else (dataset, task, classes, columns, encoding, scaler,
window; with one-hot encoding, the categories); a difference is an error that names it. Test metrics are those of the
first run's test rows (the same KDDTest+ or held-out captures for every seed of a protocol).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ids_lightning.analysis.baseline import scores
from ids_lightning.core import provenance
from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import atomic_write_json, output_folder, read_json_object, same_file
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.evaluation.unseen import unseen_scores_of
from ids_lightning.training.export import export_run
from ids_lightning.training.run_folder import load_best_model, read_config, rebuild, rows_config

log = logging.getLogger(__name__)
MUST_AGREE = ("dataset", "task", "class_names", "numeric_names", "categorical_names", "encoding", "scaler", "window")


def check_members(states: list[Preprocessor], names: list[str]) -> None:
    if states[0].scaler == "quantile":  # each member's knots come from its own training rows
        raise DataError("members scaled by quantiles cannot share one input: one scaling cannot be mapped to another")
    keys = MUST_AGREE + (("categories",) if states[0].encoding == "onehot" else ())
    for key in keys:
        values = [getattr(s, key) for s in states]
        if any(v != values[0] for v in values[1:]):
            different = next(n for n, v in zip(names, values) if v != values[0])
            raise DataError(f"{different} and {names[0]} differ in {key}: they cannot be averaged in one graph")


class Rescale(nn.Module):
    """Inputs scaled by ``base`` to the scaling of ``member``: numeric columns are affine maps of
    each other (same transform, other minimum and span), clipped as the member clips;
    label-encoded and embedded categories are looked up (base code -> the member's value of
    that category);
    one-hot columns, and a window's padding, are left as they are."""

    def __init__(self, base: Preprocessor, member: Preprocessor):
        super().__init__()
        width = base.num_features + (base.window > 1)
        scale, shift = torch.ones(width), torch.zeros(width)
        n = len(base.numeric_names)
        base_lo, member_lo = np.asarray(base.numeric_min), np.asarray(member.numeric_min)
        base_span, member_span = _spans(base), _spans(member)
        scale[:n] = torch.from_numpy(base_span / member_span)
        shift[:n] = torch.from_numpy((base_lo - member_lo) / member_span)
        numeric = torch.zeros(width, dtype=torch.bool)
        numeric[:n] = True
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)
        self.register_buffer("numeric", numeric)
        self.clip, self.windowed = member.clip, base.window > 1
        # label encoding: column n + j holds code / len(categories), embedding the code itself;
        # a lookup per column from the base's code to the member's value of that category
        self.categories = []
        if base.encoding in ("label", "embedding"):
            for j, name in enumerate(base.categorical_names):
                known = {c: i for i, c in enumerate(member.categories[name], start=1)}
                divisor = max(len(member.categories[name]), 1) if base.encoding == "label" else 1
                values = [known.get(c, 0) / divisor for c in base.categories[name]]
                self.register_buffer(f"lookup_{j}", torch.tensor([0.0, *values]))
                size = max(len(base.categories[name]), 1) if base.encoding == "label" else 1
                self.categories.append((n + j, size, len(base.categories[name])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mapped = x * self.scale + self.shift
        if self.clip:
            mapped = mapped.clamp(0.0, 1.0)
        out = torch.where(self.numeric, mapped, x)
        if self.categories:
            columns = list(out.unbind(-1))
            for j, (column, scale, codes) in enumerate(self.categories):
                code = (x[..., column] * scale).round().clamp(0, codes).long()
                columns[column] = getattr(self, f"lookup_{j}")[code]
            out = torch.stack(columns, dim=-1)
        return out * x[..., -1:] if self.windowed else out  # padding rows stay zero


def _spans(state: Preprocessor) -> np.ndarray:
    span = np.asarray(state.numeric_max) - np.asarray(state.numeric_min)
    return np.where(span == 0, 1.0, span)


class Ensemble(nn.Module):
    """The mean of the members' class probabilities, each fed its own scaling."""

    def __init__(self, members: list[nn.Module], rescales: list[Rescale]):
        super().__init__()
        self.members, self.rescales = nn.ModuleList(members), nn.ModuleList(rescales)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(r(features)) for m, r in zip(self.members, self.rescales)]).mean(dim=0)


def build(run_dirs: list[Path]) -> tuple[Ensemble, Preprocessor]:
    states = [Preprocessor.load(d / "preprocess.json") for d in run_dirs]
    check_members(states, [str(d) for d in run_dirs])
    members = [load_best_model(d) for d in run_dirs]
    return Ensemble(members, [Rescale(states[0], s) for s in states]).eval(), states[0]


def member_runs(folders: list[Path]) -> list[Path]:
    """Run folders, a folder of seeds trained together (``seeds=[...]``, with ``replicas.json``)
    standing for its seeds' runs: those share one split, so the ensemble also gets validation
    scores."""
    runs = []
    for folder in folders:
        summary = folder / "replicas.json"
        if not summary.is_file():
            runs.append(folder)
            continue
        names = read_json_object(summary, "a seeds summary (replicas.json)").get("runs")
        if not isinstance(names, list) or not all(isinstance(n, str) and Path(n).name == n != ".." for n in names):
            raise DataError(f"{summary}: 'runs' must list the seeds' run folders by name")
        runs += [folder / name for name in names]
    return runs


def ensemble(run_dirs: list[Path], output: Path, data_dir: str | None = None) -> dict:
    run_dirs = member_runs(run_dirs)
    if len(run_dirs) < 2:
        raise DataError("an ensemble needs at least two runs")
    inside = [d for d in run_dirs if same_file(output, d) or output.resolve().is_relative_to(d.resolve())]
    if inside:
        raise DataError(f"--output {output} is (inside) the member run {inside[0]}: its files would be overwritten")
    model, state = build(run_dirs)
    config, datamodule, _ = rebuild(run_dirs[0], data_dir)
    tensors = {stage: (x.cpu(), y.cpu()) for stage, (x, y) in datamodule.tensors.items()}
    output_folder(output)
    traced = ("commit", "config_sha256", "data_sha256")
    members = [{"run": str(d), **{k: (provenance.read(d) or {}).get(k) for k in traced}} for d in run_dirs]
    setting = {"ensemble_of": [m["config_sha256"] for m in members]}
    provenance.write(output, provenance.record(setting, datamodule.data_files(), "cpu", members=members))
    state.save(output / "preprocess.json")
    summary = export_run(model, tensors, output, state.class_names)

    def scored(stage: str) -> tuple[dict, np.ndarray]:
        x, y = tensors[stage]
        with torch.no_grad():
            probabilities = torch.cat([model(x[i : i + 4096]) for i in range(0, len(y), 4096)]).numpy()
        return scores(y.numpy(), probabilities, state.class_names, stage), probabilities

    metrics, test_probabilities = scored("test")
    metrics |= unseen_scores_of(datamodule, test_probabilities.argmax(1))
    # Validation scores only where every member held out the same rows (same data split, other
    # model seeds): elsewhere one member's validation rows are another's training rows.
    if all(rows_config(read_config(d)) == rows_config(config) for d in run_dirs):
        metrics |= scored("val")[0]
    metrics = {
        **metrics,
        **datamodule.facts(),
        "model": "ensemble",
        "members": [str(d) for d in run_dirs],
        "seed": None,
        "tags": list(config.get("tags") or []),
        **summary,
    }
    provenance.finish(output)
    atomic_write_json(output / "metrics.json", metrics)
    log.info(
        "ensemble of %d runs: test accuracy %.4f, macro-F1 %.4f; %s",
        len(run_dirs),
        metrics["test/acc"],
        metrics["test/f1_macro"],
        output,
    )
    return metrics
