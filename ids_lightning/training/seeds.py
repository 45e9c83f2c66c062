"""``seeds=[...]``: several seeds' nets trained together in one process, a run folder each."""

from __future__ import annotations

import copy
import logging
import statistics
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from ids_lightning.core import provenance
from ids_lightning.core.errors import ConfigError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.models.replicas import ReplicaLitModule
from ids_lightning.training.callbacks.checkpoint import RunCheckpoint, resumable
from ids_lightning.training.config import instantiate, model_from_config
from ids_lightning.training.folder import FIT_RECORD, finished_summary, started_run
from ids_lightning.training.run import record_provenance, setup_datamodule, train

log = logging.getLogger(__name__)
SEEDS_SUMMARY = "replicas.json"


def train_seeds(cfg: DictConfig) -> dict:
    """The seeds' nets train together (:class:`ReplicaLitModule`) on the split, resampling and
    preprocessing of ``dataset.seed``; each seed differs in initialisation, data order and
    dropout. Seed ``k``'s run folder ``seed_<k>`` then gets what a separate run with ``seed=k
    dataset.seed=<dataset.seed>`` gets: it is tested, exported and reported from its fit
    record, like a run whose fit had finished. ``replicas.json`` summarises the seeds and marks
    the whole as finished."""
    done = finished_summary(cfg, SEEDS_SUMMARY)
    if done is not None:
        return done
    with started_run(cfg) as output_dir:
        seeds = [int(seed) for seed in cfg.seeds]
        configs = [seed_config(cfg, seed, output_dir / f"seed_{seed}") for seed in seeds]
        folders = [Path(config.paths.output_dir) for config in configs]
        datamodule = setup_datamodule(cfg, shuffle_seed=seeds)
        record_provenance(cfg, datamodule, output_dir)
        if not all((folder / FIT_RECORD).is_file() for folder in folders):
            fit_seeds(cfg, configs, datamodule, output_dir)
        runs = []
        for config, folder in zip(configs, folders):
            datamodule.preprocessor.save(folder / "preprocess.json")
            runs.append(train(config, datamodule))
        summary = seeds_summary(seeds, folders, runs)
        provenance.finish(output_dir)
        atomic_write_json(output_dir / SEEDS_SUMMARY, summary)
    keys = [key for key in ("test/acc", "test/f1_macro") if key in summary]
    shown = ", ".join(f"{key} {summary[key]:.4f} ± {summary[key + '_std']:.4f}" for key in keys)
    log.info("seeds %s trained together in %.1f s: %s (runs in %s)", seeds, summary["fit_seconds"], shown, output_dir)
    return summary


def seed_config(cfg: DictConfig, seed: int, folder: Path) -> DictConfig:
    """Seed ``seed``'s own config: what ``train.py seed=<seed> dataset.seed=<the shared split's>``
    would compose, with its run folder ``folder`` (its config.yaml says so), its loggers grouped
    by the seeds' folder."""
    config = copy.deepcopy(cfg)
    config.dataset.seed = int(cfg.dataset.seed)  # one split for every seed
    config.seed, config.seeds, config.paths.output_dir = seed, None, str(folder)
    for logger in (config.get("logger") or {}).values():
        if logger and "group" in logger and logger.group is None:  # MLflow: the seeds' runs nest under one
            logger.group = str(folder.parent)
    return config


def fit_seeds(cfg: DictConfig, configs: list[DictConfig], datamodule, output_dir: Path) -> None:
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


def seeds_summary(seeds: list[int], folders: list[Path], runs: list[dict]) -> dict:
    """Mean and standard deviation over the seeds of every validation and test number."""
    summary: dict = {"seeds": seeds, "runs": [folder.name for folder in folders], "fit_seconds": runs[0]["fit_seconds"]}
    for key in sorted(runs[0]):
        values = [run.get(key) for run in runs]
        if key.startswith(("val/", "test/")) and all(isinstance(v, (int, float)) for v in values):
            summary[key] = statistics.fmean(values)
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary
