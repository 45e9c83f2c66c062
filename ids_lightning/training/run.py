"""One run: instantiate, fit (or resume, or complete a finished fit), export, test the best
checkpoint, write ``metrics.json``. ``ids train`` (:mod:`ids_lightning.cli.train`) chooses
between this, seeds trained together (:mod:`ids_lightning.training.seeds`) and a federation."""

from __future__ import annotations

import copy
import logging
import platform
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, open_dict

from ids_lightning.core import provenance
from ids_lightning.core.fileio import atomic_write_json, is_primary_process, read_json_object
from ids_lightning.models.module import best_epoch
from ids_lightning.training import loggers as run_loggers
from ids_lightning.training.callbacks.checkpoint import FitRecord, resumable, scalar_metrics
from ids_lightning.training.config import (
    config_choice,
    instantiate,
    instantiate_group,
    model_from_config,
    register_resolvers,
)
from ids_lightning.training.console import run_summary
from ids_lightning.training.export import export_best, export_options
from ids_lightning.training.folder import FIT_RECORD, comparable_config, finished_summary, started_run

log = logging.getLogger(__name__)
register_resolvers()
METRICS = "metrics.json"  # written last: a run is finished when it exists


def train(cfg: DictConfig, datamodule=None, callbacks: list | None = None) -> dict:
    """Fit, export, test the best checkpoint, write ``metrics.json``; return what it holds.

    A run is finished when ``metrics.json`` exists, and it is written last. A re-run of an
    unfinished run resumes the fit from the newest checkpoint that loads, or, when the fit had
    finished (``fit.json``), completes what is missing: export, test, figures, metrics.
    ``datamodule``: one already set up for this config (seeds trained together share one);
    ``callbacks``: the caller's, beside the config's (a search's pruning).
    """
    done = finished_summary(cfg, METRICS)
    if done is not None:
        return done
    with started_run(cfg) as output_dir:
        datamodule = datamodule or setup_datamodule(cfg)
        record_provenance(cfg, datamodule, output_dir)
        if (output_dir / FIT_RECORD).is_file() and "strategy" in cfg.trainer:
            cfg = single_process(cfg)  # a finished distributed fit completes in one process
        extra = list(callbacks or [])
        model, trainer, callbacks = build(cfg, output_dir, datamodule, extra)
        fitted = fit(cfg, trainer, model, datamodule, output_dir)
        if trainer.world_size > 1:  # every test row counts once: rank 0 tests in one process
            end_process_group(trainer)
            if not trainer.is_global_zero:
                return dict(fitted["metrics"])
            cfg = single_process(cfg)
            model, trainer, callbacks = build(cfg, output_dir, datamodule, extra)
            fitted = fit(cfg, trainer, model, datamodule, output_dir)
        options = export_options(cfg.get("export"))
        exported = export_best(model, datamodule, fitted["best_checkpoint"], output_dir, options) if options else {}
        metrics = test(cfg, trainer, model, datamodule, fitted)
        parts = [*(getattr(callback, "summary", {}) for callback in callbacks), exported]
        summary = run_facts(cfg, model, datamodule, fitted, metrics, parts)
        provenance.finish(output_dir)
        atomic_write_json(output_dir / METRICS, summary)
        run_loggers.finish(trainer.loggers, cfg, summary, output_dir, trainer.global_step)
        log.info(run_summary(summary, output_dir))
        return summary


def record_provenance(cfg: DictConfig, datamodule, output_dir: Path) -> None:
    """``provenance.json`` when the run starts: code, environment, the data files' hashes and the
    config's; a resumed run keeps its first record and adds when (and with what code) it resumed."""
    if not is_primary_process():
        return
    earlier = provenance.read(output_dir)
    if earlier is not None:
        resumed = [*earlier.get("resumed", []), {"at": provenance.now(), **provenance.code_state()}]
        provenance.write(output_dir, {**earlier, "resumed": resumed, "ended_at": None})
        return
    record = provenance.record(comparable_config(cfg), datamodule.data_files(), device_of(cfg))
    provenance.write(output_dir, record)


def device_of(cfg: DictConfig) -> str:
    """The device the config's trainer will use, in words."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    cuda = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    return device_name(torch.device("cuda" if cuda else "cpu"))


def device_name(device: torch.device) -> str:
    """A device in words: the GPU's name, or the CPU's model and the threads torch uses."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        cpuinfo = []
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    return f"cpu: {model} ({torch.get_num_threads()} threads)"


def setup_datamodule(cfg: DictConfig, **overrides):
    """The config's datamodule, its files fetched or found and its splits built."""
    datamodule = instantiate(cfg.dataset, **overrides)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build(
    cfg: DictConfig, output_dir: Path, datamodule, extra: list | None = None
) -> tuple[L.LightningModule, L.Trainer, list]:
    """The module sized for the datamodule, and a trainer with the config's callbacks and loggers."""
    model = model_from_config(cfg, datamodule.preprocessor, datamodule.class_weights)
    n_params = sum(p.numel() for p in model.net.parameters())
    log.info("model: %s, %s parameters", type(model.net).__name__, f"{n_params:,}")
    # FitRecord first: fit.json must be written before the other callbacks' fit-end work
    callbacks = [FitRecord(output_dir / FIT_RECORD), *instantiate_group(cfg.get("callbacks")), *(extra or [])]
    loggers = instantiate_group(cfg.get("logger"))
    run_loggers.start(loggers, cfg)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return model, trainer, callbacks


def fit(cfg: DictConfig, trainer: L.Trainer, model, datamodule, output_dir: Path) -> dict:
    """Fit (or resume an interrupted fit); :class:`FitRecord` writes ``fit.json`` when it ends.
    If that record exists, the fit finished in an earlier process: restore it instead."""
    record_path = output_dir / FIT_RECORD
    if record_path.is_file():
        return restore(trainer, model, record_path)
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
            early.stopped_epoch + 1, early.monitor, early.patience, float(early.best_score),
        )  # fmt: skip
    best = recorder.record["best_checkpoint"]
    return {**recorder.record, "best_checkpoint": str(output_dir / best) if best else ""}


def restore(trainer: L.Trainer, model, record_path: Path) -> dict:
    """The record of a fit that finished in an earlier process, with its history on ``model``
    (and, for seeds trained together, whose curves were never logged, in the loggers)."""
    record = read_json_object(record_path, "the record of a finished fit")
    log.info("the fit finished earlier (%s): completing export, test and report", record_path)
    model.history = record["history"]
    if record.get("batched_seeds"):
        for row in record["history"]:
            values = {k: v for k, v in row.items() if v is not None}
            for logger in trainer.loggers:
                logger.log_metrics(values, step=row["epoch"])
    best = record["best_checkpoint"]
    return {**record, "best_checkpoint": str(record_path.parent / best) if best else ""}


def test(cfg: DictConfig, trainer: L.Trainer, model, datamodule, fitted: dict) -> dict:
    """The fit's final metrics, and the test of its best checkpoint when ``cfg.test``."""
    metrics = dict(fitted["metrics"])
    if cfg.get("test"):
        best = fitted["best_checkpoint"]
        if not best:
            log.warning("no best checkpoint (fast_dev_run or checkpointing off): testing the last weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=False)
        metrics.update(scalar_metrics(trainer.callback_metrics))
    return metrics


def run_facts(cfg: DictConfig, model, datamodule, fitted: dict, metrics: dict, parts: list[dict]) -> dict:
    """What ``metrics.json`` holds: the metrics, the data's facts, the fit's, and each part's
    summary (the callbacks that measured something, the export)."""
    return {
        **metrics,
        **datamodule.facts(),
        "model": config_choice("model", default=type(model.net).__name__),
        "seed": cfg.seed,
        "tags": list(cfg.get("tags") or []),
        "epochs_run": fitted["epochs_run"],
        # a refit trains on its validation rows: the last epoch is tested, none is chosen
        "best_epoch": fitted["epochs_run"] - 1 if datamodule.options.split.refit else best_epoch(fitted["history"]),
        "fit_seconds": fitted["fit_seconds"],
        "world_size": fitted.get("world_size", 1),
        **({"batched_seeds": fitted["batched_seeds"]} if fitted.get("batched_seeds") else {}),
        "n_params": sum(p.numel() for p in model.net.parameters()),
        **datamodule.stats,
        **{k: v for part in parts for k, v in part.items()},
    }


def end_process_group(trainer: L.Trainer) -> None:
    """After a distributed fit: wait until fit.json and the checkpoints are written, then end
    the process group so that rank 0 can go on alone."""
    trainer.strategy.barrier()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def single_process(cfg: DictConfig) -> DictConfig:
    """``cfg`` with a trainer of one device in one process (testing after a distributed fit)."""
    config = copy.deepcopy(cfg)
    with open_dict(config):
        config.trainer.devices, config.trainer.num_nodes, config.trainer.strategy = 1, 1, "auto"
    return config
