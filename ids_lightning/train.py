"""Train, test and report one run. ``python train.py`` (or ``ids train``) composes ``conf/``."""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import shutil
import statistics
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from ids_lightning.callbacks import OnnxExport
from ids_lightning.callbacks.checkpoint import FitRecord, RunCheckpoint, resumable, scalar_metrics
from ids_lightning.config import (
    CONFIG_DIR,
    config_choice,
    instantiate,
    instantiate_group,
    register_resolvers,
    sweep_value,
    unknown_keys,
)
from ids_lightning.console import quiet, run_summary
from ids_lightning.core.errors import ConfigError, RunInUseError
from ids_lightning.core.fileio import atomic_write_bytes, atomic_write_json, is_primary_process
from ids_lightning.federation.apps import simulate
from ids_lightning.models.module import best_epoch, model_from_config
from ids_lightning.models.replicas import ReplicaLitModule

log = logging.getLogger(__name__)
register_resolvers()
FIT_RECORD = "fit.json"
SEEDS_SUMMARY = "replicas.json"


def train(cfg: DictConfig, datamodule=None) -> dict:
    """Fit, test the best checkpoint, export, write ``metrics.json``; return what it holds.

    A run is finished when ``metrics.json`` exists, and it is written last. A re-run of an
    unfinished run resumes the fit from the newest checkpoint that loads, or, when the fit had
    finished (``fit.json``), completes what is missing: test, export, figures, metrics.
    With ``seeds=[...]`` the seeds train together and each gets a run folder of its own (see
    :func:`train_seeds`); ``replicas.json`` then marks the whole as finished. ``datamodule``:
    one already set up for this config.
    """
    output_dir = Path(cfg.paths.output_dir)
    finished = output_dir / (SEEDS_SUMMARY if cfg.get("seeds") else "metrics.json")
    if cfg.get("skip_finished") and finished.is_file():
        log.info("%s exists: this run already finished, skipping it", finished)
        return json.loads(finished.read_text())
    if not is_primary_process():  # a further rank of a distributed run: rank 0 owns the folder
        check_config(cfg)
        return _train(cfg, output_dir, datamodule)
    try:
        check_config(cfg)
        with run_lock(output_dir):
            return _train(cfg, output_dir, datamodule)
    except Exception:
        _remove_if_empty(output_dir)
        raise


STARTUP_FILES = {".hydra", "train.log", "config.yaml", ".lock"}


def _remove_if_empty(output_dir: Path) -> None:
    """A run that failed before it trained leaves no folder behind (only Hydra's and the run's
    start-up files were in it); one with checkpoints stays, to be resumed."""
    if output_dir.is_dir() and {p.name for p in output_dir.iterdir()} <= STARTUP_FILES:
        shutil.rmtree(output_dir, ignore_errors=True)


@contextmanager
def run_lock(output_dir: Path) -> Iterator[None]:
    """One process per run folder: two runs into one folder would interleave checkpoints and
    events, so the second refuses. The lock dies with its process (a killed run can re-run)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RunInUseError(
                f"{output_dir} is in use by another run (pid {handle.read().strip() or '?'}); "
                "wait for it or choose another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def _train(cfg: DictConfig, output_dir: Path, datamodule=None) -> dict:
    finished = output_dir / "metrics.json"
    quiet()
    log.info("run folder: %s", output_dir)
    # The resolved config beside the results, first: tools rebuild the run's net from it.
    if is_primary_process():
        atomic_write_bytes(output_dir / "config.yaml", OmegaConf.to_yaml(_without_hydra(cfg), resolve=True).encode())
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("federated"):  # experiment=federated: the sites train, on Flower's simulation engine
        summary = simulate(cfg, output_dir)
        atomic_write_json(finished, summary)
        log.info(run_summary(summary, output_dir))
        return summary
    if cfg.get("seeds"):
        return train_seeds(cfg, output_dir)
    datamodule = datamodule or instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return _fit_and_test(cfg, output_dir, datamodule)


def _fit_and_test(cfg: DictConfig, output_dir: Path, datamodule) -> dict:
    """Fit (or complete a finished fit), test, export and write ``metrics.json``. A distributed
    fit ends its process group; rank 0 then tests in one process, as a re-run of a finished fit
    would, so that every test row counts once and the callbacks see the whole test split."""
    finished = output_dir / "metrics.json"
    if (output_dir / FIT_RECORD).is_file() and "strategy" in cfg.trainer:
        cfg = single_process(cfg)  # a finished distributed fit completes in one process
    model = model_from_config(cfg, datamodule.preprocessor, datamodule.class_weights)
    net = model.net
    n_params = sum(p.numel() for p in net.parameters())
    log.info("model: %s, %s parameters", type(net).__name__, f"{n_params:,}")
    # FitRecord first: fit.json must be written before the other callbacks' fit-end work
    callbacks = [FitRecord(output_dir / FIT_RECORD), *instantiate_group(cfg.get("callbacks"))]
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    fitted = fit(cfg, trainer, model, datamodule, callbacks, output_dir)
    if trainer.world_size > 1:
        trainer.strategy.barrier()  # fit.json and the checkpoints are written
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if not trainer.is_global_zero:
            return dict(fitted["metrics"])
        return _fit_and_test(single_process(cfg), output_dir, datamodule)
    metrics = dict(fitted["metrics"])

    if cfg.get("test"):
        best = fitted["best_checkpoint"]
        if not best:
            log.warning("no best checkpoint (fast_dev_run or checkpointing off): testing the last weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=False)
        metrics.update(scalar_metrics(trainer.callback_metrics))

    summary = {
        **metrics,
        **datamodule.facts(),
        "model": config_choice("model", default=type(net).__name__),
        "seed": cfg.seed,
        "tags": list(cfg.get("tags") or []),
        "epochs_run": fitted["epochs_run"],
        "best_epoch": best_epoch(fitted["history"]),
        "fit_seconds": fitted["fit_seconds"],
        "world_size": fitted.get("world_size", 1),
        **({"batched_seeds": fitted["batched_seeds"]} if fitted.get("batched_seeds") else {}),
        "n_params": n_params,
        **datamodule.stats,
        **{k: v for cb in callbacks for k, v in getattr(cb, "summary", {}).items()},
    }
    log_hparams(trainer.loggers, cfg, metrics)
    atomic_write_json(finished, summary)
    log.info(run_summary(summary, output_dir))
    return summary


def single_process(cfg: DictConfig) -> DictConfig:
    """``cfg`` with a trainer of one device in one process (testing after a distributed fit)."""
    config = copy.deepcopy(cfg)
    with open_dict(config):
        config.trainer.devices, config.trainer.num_nodes, config.trainer.strategy = 1, 1, "auto"
    return config


def train_seeds(cfg: DictConfig, output_dir: Path) -> dict:
    """``seeds=[...]``: the seeds' nets train together (:class:`ReplicaLitModule`) on the split,
    resampling and preprocessing of ``dataset.seed``; each seed differs in initialisation, data
    order and dropout. Seed ``k``'s run folder ``seed_<k>`` then gets what a separate run with
    ``seed=k dataset.seed=<dataset.seed>`` gets: it is tested, exported and reported from its fit
    record, like a run whose fit had finished. ``replicas.json`` summarises the seeds."""
    seeds = [int(seed) for seed in cfg.seeds]
    configs = [_seed_config(cfg, seed, output_dir / f"seed_{seed}") for seed in seeds]
    folders = [Path(config.paths.output_dir) for config in configs]
    datamodule = instantiate(cfg.dataset, shuffle_seed=seeds)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if not all((folder / FIT_RECORD).is_file() for folder in folders):
        _fit_seeds(cfg, configs, datamodule, output_dir)
    runs = []
    for config, folder in zip(configs, folders):
        datamodule.preprocessor.save(folder / "preprocess.json")
        runs.append(train(config, datamodule))
    summary = _seeds_summary(seeds, folders, runs)
    atomic_write_json(output_dir / SEEDS_SUMMARY, summary)
    keys = [key for key in ("test/acc", "test/f1_macro") if key in summary]
    shown = ", ".join(f"{key} {summary[key]:.4f} ± {summary[key + '_std']:.4f}" for key in keys)
    log.info("seeds %s trained together in %.1f s: %s (runs in %s)", seeds, summary["fit_seconds"], shown, output_dir)
    return summary


def _seed_config(cfg: DictConfig, seed: int, folder: Path) -> DictConfig:
    """Seed ``seed``'s own config: what ``train.py seed=<seed> dataset.seed=<the shared split's>``
    would compose, with its run folder ``folder`` (its config.yaml says so)."""
    config = copy.deepcopy(cfg)
    config.dataset.seed = int(cfg.dataset.seed)  # one split for every seed
    config.seed, config.seeds, config.paths.output_dir = seed, None, str(folder)
    return config


def _fit_seeds(cfg: DictConfig, configs: list[DictConfig], datamodule, output_dir: Path) -> None:
    """Fit the seeds together; the members' ``fit.json`` mark the fit as done."""
    members, selection, stopping, states = [], [], [], []
    for config in configs:
        callbacks = config.get("callbacks") or {}
        if callbacks.get("model_checkpoint") is None:
            raise ConfigError("seeds=[...] needs callbacks.model_checkpoint: each seed is tested from its best weights")
        L.seed_everything(config.seed, workers=True, verbose=False)
        members.append(model_from_config(config, datamodule.preprocessor, datamodule.class_weights))
        states.append(torch.get_rng_state())
        selection.append(instantiate(callbacks.model_checkpoint))
        stopping.append(instantiate(callbacks.early_stopping) if callbacks.get("early_stopping") else None)
    folders = [Path(config.paths.output_dir) for config in configs]
    model = ReplicaLitModule(members, [c.seed for c in configs], folders, selection, stopping, states)
    checkpoints = output_dir / "checkpoints"
    last = RunCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0, monitor=None)
    bar = (cfg.get("callbacks") or {}).get("progress_bar")
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=[last, *([instantiate(bar)] if bar else [])], logger=False)
    if trainer.world_size > 1:
        raise ConfigError("seeds=[...] trains in one process: use one device (trainer.devices=1)")
    resume = resumable(checkpoints) if cfg.get("auto_resume") and checkpoints.is_dir() else None
    if resume is not None:
        log.info("resuming the interrupted seeds from %s", resume)
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)


def _seeds_summary(seeds: list[int], folders: list[Path], runs: list[dict]) -> dict:
    """Mean and standard deviation over the seeds of every validation and test number."""
    summary: dict = {"seeds": seeds, "runs": [folder.name for folder in folders], "fit_seconds": runs[0]["fit_seconds"]}
    for key in sorted(runs[0]):
        values = [run.get(key) for run in runs]
        if key.startswith(("val/", "test/")) and all(isinstance(v, (int, float)) for v in values):
            summary[key] = statistics.fmean(values)
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary


def check_config(cfg: DictConfig) -> None:
    """Refuse settings that would train nothing, split wrongly or select on the test set."""
    seeds = cfg.get("seeds")
    if seeds is not None and (len(seeds) == 0 or len(set(seeds)) != len(seeds)):
        raise ConfigError(f"seeds must be a list of distinct seeds, not {list(seeds)}")
    if seeds and cfg.get("federated"):
        raise ConfigError("seeds=[...] and experiment=federated do not combine: run the federation once per seed")
    if cfg.trainer.get("max_epochs") is not None and cfg.trainer.max_epochs < 1 and not cfg.trainer.get("max_steps"):
        raise ConfigError(f"trainer.max_epochs must be at least 1, not {cfg.trainer.max_epochs}")
    for key in ("val_fraction", "test_fraction"):
        value = cfg.dataset.get(key)
        if value is not None and not 0 < value < 1:
            raise ConfigError(f"dataset.{key} must lie strictly between 0 and 1, not {value}")
    if cfg.dataset.get("val_fraction", 0) + cfg.dataset.get("test_fraction", 0) >= 1:
        raise ConfigError("dataset.val_fraction + dataset.test_fraction must be below 1")
    metric = cfg.get("optimized_metric")
    if metric is not None and not str(metric).startswith(("val/", "train/")):
        raise ConfigError(f"optimized_metric must be a validation (or training) metric, not {metric!r}")


def fit(cfg: DictConfig, trainer: L.Trainer, model, datamodule, callbacks: list, output_dir: Path) -> dict:
    """Fit (or resume an interrupted fit); :class:`FitRecord` writes ``fit.json`` when it ends.
    If that record exists, the fit finished in an earlier process: restore it and export from
    its best checkpoint instead of fitting again."""
    record_path = output_dir / FIT_RECORD
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        log.info("the fit finished earlier (%s): completing test, export and report", record_path)
        model.history = record["history"]
        if record.get("batched_seeds"):  # trained beside other seeds: its curves were never logged
            for row in record["history"]:
                values = {k: v for k, v in row.items() if v is not None}
                for logger in trainer.loggers:
                    logger.log_metrics(values, step=row["epoch"])
        best = str(output_dir / record["best_checkpoint"]) if record["best_checkpoint"] else ""
        for callback in callbacks:
            if isinstance(callback, OnnxExport):
                callback.export(model, datamodule, best)
        return {**record, "best_checkpoint": best}
    ckpt_path = cfg.get("ckpt_path")
    checkpoints = output_dir / "checkpoints"
    if ckpt_path is None and cfg.get("auto_resume") and checkpoints.is_dir():
        resume = resumable(checkpoints)
        if resume is not None:
            log.info("resuming the interrupted run from %s", resume)
            ckpt_path = str(resume)
    recorder = next(cb for cb in trainer.callbacks if isinstance(cb, FitRecord))
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    early = trainer.early_stopping_callback
    if early is not None and early.stopped_epoch > 0:
        log.info(
            "early stopping after epoch %d: %s did not improve for %d epochs (best %.4f)",
            early.stopped_epoch + 1,
            early.monitor,
            early.patience,
            float(early.best_score),
        )
    best = recorder.record["best_checkpoint"]
    return {**recorder.record, "best_checkpoint": str(output_dir / best) if best else ""}


def flat_hparams(cfg: DictConfig) -> dict[str, object]:
    """The resolved config flattened to ``a/b/c`` keys with TensorBoard-friendly values."""
    flat: dict[str, object] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not str(key).startswith("_"):
                    walk(value, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, (int, float, str, bool)):
            flat[prefix] = node
        elif node is not None:
            flat[prefix] = str(node)

    for group in ("dataset", "model", "trainer"):
        if group in cfg:
            walk(OmegaConf.to_container(cfg[group], resolve=True), group)
    flat["seed"] = cfg.get("seed")
    return flat


def log_hparams(loggers: list[Logger], cfg: DictConfig, metrics: Mapping[str, float | None]) -> None:
    """One TensorBoard hparams entry per run, holding the final validation and test metrics."""
    final = {k: v for k, v in metrics.items() if v is not None and k.startswith(("val/", "test/"))}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(flat_hparams(cfg), metrics=final)
            # after trainer.test the writer is no longer flushed by Lightning: without this
            # the entry can sit in the writer's queue when the caller (or a reader) goes on
            logger.experiment.flush()


def _without_hydra(cfg: DictConfig) -> DictConfig:
    return OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> float:
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    return sweep_value(train(cfg), cfg.get("optimized_metric"))


def main() -> float | None:
    """``python train.py [overrides]``: a mistyped key is refused with the closest real one
    before Hydra makes a run folder."""
    problems = unknown_keys([arg for arg in sys.argv[1:] if not arg.startswith("-")])
    if problems:
        raise SystemExit("\n".join(problems))
    return _hydra_main()
