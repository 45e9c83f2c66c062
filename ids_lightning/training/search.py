"""Hyperparameter search with Optuna, driven over Hydra's compose API.

``python -m ids_lightning.cli.search hparams_search=cnn_lstm_optuna [overrides...]`` composes
``ids_lightning/conf/train.yaml`` with the chosen search config, then for each trial samples the ``search.params``
space with a seeded TPE sampler, trains one run (``train.py`` in-process, into
``outputs/search/<time>_<id>/trial_<n>``) and reports ``optimized_metric`` (a validation metric)
to Optuna. The study's trials and best parameters go to ``study.json`` beside the trials, whose
TensorBoard logs can be browsed together. (Hydra's Optuna sweeper plugin pins optuna < 3; this
driver works with current Optuna.)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import OmegaConf

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.training.config import RUN_ID, compose, sweep_value

log = logging.getLogger(__name__)


def suggest(trial, name: str, spec: dict):
    kind = spec["type"]
    if kind == "float":
        return trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
    if kind == "int":
        return trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
    if kind == "categorical":
        return trial.suggest_categorical(name, list(spec["choices"]))
    raise ValueError(f"search parameter {name}: unknown type {kind!r} (float, int or categorical)")


def search(overrides: list[str], output: Path | None = None) -> dict:
    import optuna

    from ids_lightning.training.run import train

    base = compose(overrides, "unused")
    if "search" not in base:
        raise ConfigError("choose a search space: ids search hparams_search=<name>")
    space = OmegaConf.to_container(base.search, resolve=True)
    metric = base.optimized_metric
    if not metric.startswith("val/"):
        raise ConfigError(f"optimized_metric must be a validation metric, not {metric!r}")
    output = output or Path(base.paths.log_dir) / "search" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{RUN_ID}"
    sampler = optuna.samplers.TPESampler(seed=space["sampler_seed"])
    study = optuna.create_study(direction=space["direction"], sampler=sampler)

    def objective(trial) -> float:
        chosen = {name: suggest(trial, name, spec) for name, spec in space["params"].items()}
        trial_overrides = [*overrides, *(f"{name}={value}" for name, value in chosen.items())]
        metrics = train(compose(trial_overrides, output / f"trial_{trial.number}"))
        return sweep_value(metrics, metric)

    study.optimize(objective, n_trials=space["n_trials"])
    result = {
        "metric": metric,
        "direction": space["direction"],
        "best_value": study.best_value,
        "best_params": study.best_params,
        "best_trial": study.best_trial.number,
        "trials": [
            {"number": t.number, "value": t.value, "params": t.params, "state": t.state.name} for t in study.trials
        ],
    }
    atomic_write_json(output / "study.json", result)
    log.info("best %s = %.4f with %s (%s)", metric, study.best_value, study.best_params, output)
    return result
