"""Hyperparameter search with Optuna, driven over Hydra's compose API, in a study that persists.

``ids search hparams_search=cnn_lstm_optuna [overrides...]`` composes
``ids_lightning/conf/train.yaml`` with the chosen search config. The study lives in storage
(``search.storage``: a SQLite file under ``outputs/`` by default) under ``search.study_name``;
each trial samples the ``search.params`` space with a seeded TPE sampler, trains one run
(``train.py`` in-process, into ``<log_dir>/search/<study>/trial_<n>``) and reports
``optimized_metric`` (a validation metric) to Optuna. ``study.json`` beside the trials holds
every trial and the best.

- **Resume.** Re-running the command continues the study until it holds ``search.n_trials``
  finished (complete or pruned) trials. A trial left running by a killed search is marked failed
  and tried again with its parameters in its own folder, which resumes from its last checkpoint.
  The sampler is seeded with the seed plus the trials already in the study, so a resumed search
  does not propose the first search's parameters again. One search per study at a time (a lock).
- **Pruning.** ``search.pruner`` (``median``, ``hyperband`` or ``none``) sees the optimised
  metric after every validation epoch and stops a trial whose curve falls behind.

Hydra's Optuna sweeper (hydra-optuna-sweeper 1.3) still pins optuna < 3, so this driver, which
works with current Optuna, stays.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from omegaconf import OmegaConf

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.training.config import compose, sweep_value
from ids_lightning.training.folder import run_lock

log = logging.getLogger(__name__)
RETRIES = "retries"  # a retried trial's user attribute: the number (and folder) of the trial it retries


def suggest(trial, name: str, spec: dict):
    kind = spec["type"]
    if kind == "float":
        return trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
    if kind == "int":
        return trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
    if kind == "categorical":
        return trial.suggest_categorical(name, list(spec["choices"]))
    raise ValueError(f"search parameter {name}: unknown type {kind!r} (float, int or categorical)")


def make_pruner(spec: dict | None):
    """``search.pruner``: ``{type: median|hyperband|none, ...}`` with the pruner's own arguments."""
    import optuna

    spec = dict(spec or {"type": "none"})
    kind = spec.pop("type", "none")
    pruners = {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner}
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind not in pruners:
        raise ConfigError(f"search.pruner.type must be median, hyperband or none, not {kind!r}")
    return pruners[kind](**spec)


class Pruning(L.Callback):
    """Reports the monitored metric to the trial after every validation epoch (and how many
    epochs the trial has trained); stops the trial when the pruner says so."""

    def __init__(self, trial, monitor: str):
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import optuna

        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        epochs = trainer.current_epoch + 1  # the step Optuna sees: epochs trained (Hyperband's resource)
        self.trial.report(float(value), epochs)
        self.trial.set_user_attr("epochs", epochs)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epochs}: {self.monitor} {float(value):.4f}")


def search(overrides: list[str], output: Path | None = None) -> dict:
    """Run (or resume) the study of ``overrides``' search config; its summary (``study.json``)."""
    import optuna

    base = compose(overrides, "unused")
    if "search" not in base:
        raise ConfigError("choose a search space: ids search hparams_search=<name>")
    space = OmegaConf.to_container(base.search, resolve=True)
    metric = base.optimized_metric
    if not metric.startswith("val/"):
        raise ConfigError(f"optimized_metric must be a validation metric, not {metric!r}")
    name = space["study_name"]
    output = output or Path(base.paths.log_dir) / "search" / name
    with run_lock(output):
        study = optuna.create_study(
            study_name=name, storage=space["storage"], direction=space["direction"],
            pruner=make_pruner(space.get("pruner")), load_if_exists=True,
        )  # fmt: skip
        _check_same_search(study, overrides)
        retry_killed_trials(study)
        # a fresh seed per resumption: the same seed would replay the first search's proposals
        study.sampler = optuna.samplers.TPESampler(seed=space["sampler_seed"] + len(study.trials))
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        remaining = space["n_trials"] - len(study.get_trials(deepcopy=False, states=done))
        if remaining > 0:
            log.info("study %s (%s): %d trials to run", name, space["storage"], remaining)
            study.optimize(_objective(overrides, space, metric, output), n_trials=remaining)
        result = summary(study, metric, space)
        atomic_write_json(output / "study.json", result)
    log.info("best %s = %.4f with %s (%s)", metric, result["best_value"], result["best_params"], output)
    return result


def _objective(overrides: list[str], space: dict, metric: str, output: Path):
    from ids_lightning.training.run import train

    def objective(trial) -> float:
        chosen = {name: suggest(trial, name, spec) for name, spec in space["params"].items()}
        folder = output / f"trial_{trial.user_attrs.get(RETRIES, trial.number)}"
        cfg = compose([*overrides, *(f"{name}={value}" for name, value in chosen.items())], folder)
        metrics = train(cfg, callbacks=[Pruning(trial, metric)])
        trial.set_user_attr("epochs", metrics["epochs_run"])
        return sweep_value(metrics, metric)

    return objective


def _check_same_search(study, overrides: list[str]) -> None:
    """A study resumes only under the overrides that started it (but for ``search.n_trials``,
    which may grow): trials of other settings would be ranked together."""
    compared = [o for o in overrides if not o.startswith("search.n_trials=")]
    started = study.user_attrs.get("overrides")
    if started is None:
        study.set_user_attr("overrides", compared)
    elif started != compared:
        raise ConfigError(
            f"study {study.study_name!r} was started with other overrides ({' '.join(started)}): "
            "resume it with those, or choose another search.study_name"
        )


def retry_killed_trials(study) -> None:
    """Trials a killed search left running are marked failed and queued again with their
    parameters, each to resume in the folder of the trial it retries."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        origin = trial.user_attrs.get(RETRIES, trial.number)
        study.enqueue_trial(trial.params, user_attrs={RETRIES: origin})
        log.warning("trial %d was left running by a killed search: it runs again (trial_%d)", trial.number, origin)


def summary(study, metric: str, space: dict) -> dict:
    """The study's trials (state, value, parameters, epochs trained) and the best one."""
    from optuna.trial import TrialState

    trials = [
        {"number": t.number, "value": t.value, "params": t.params, "state": t.state.name,
         "epochs": t.user_attrs.get("epochs"), **({RETRIES: t.user_attrs[RETRIES]} if RETRIES in t.user_attrs else {})}
        for t in study.trials
    ]  # fmt: skip
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(f"study {study.study_name!r} has no complete trial")
    return {
        "study_name": study.study_name,
        "storage": space["storage"],
        "metric": metric,
        "direction": space["direction"],
        "pruner": space["pruner"] if (space.get("pruner") or {}).get("type", "none") != "none" else {"type": "none"},
        "best_value": study.best_value,
        "best_params": study.best_params,
        "best_trial": study.best_trial.number,
        "epochs_trained": sum(t["epochs"] or 0 for t in trials),
        "trials": trials,
    }
