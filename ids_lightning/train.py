"""Train, test and report one run. ``python train.py`` (or ``ids-train``) composes ``conf/``."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from ids_lightning.config import CONFIG_DIR, config_choice, instantiate_group, register_resolvers, sweep_value
from ids_lightning.core.fileio import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)
register_resolvers()


def train(cfg: DictConfig) -> dict:
    """Fit, test the best checkpoint, write ``metrics.json``; return what it holds."""
    output_dir = Path(cfg.paths.output_dir)
    finished = output_dir / "metrics.json"
    if cfg.get("skip_finished") and finished.is_file():
        log.info("%s exists: this run already finished, skipping it", finished)
        return json.loads(finished.read_text())
    ckpt_path = cfg.get("ckpt_path")
    last = output_dir / "checkpoints" / "last.ckpt"
    if ckpt_path is None and cfg.get("auto_resume") and last.is_file():
        log.info("resuming the interrupted run from %s", last)
        ckpt_path = str(last)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    net = hydra.utils.instantiate(
        cfg.model.net, num_features=datamodule.num_features, num_classes=datamodule.num_classes
    )
    model = hydra.utils.instantiate(
        cfg.model, net=net, class_names=datamodule.class_names, class_weights=datamodule.class_weights
    )
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    fit_seconds = time.perf_counter() - started
    metrics = scalar_metrics(trainer.callback_metrics)
    epochs_run = trainer.current_epoch

    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("no best checkpoint (fast_dev_run or checkpointing off): testing the last weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(scalar_metrics(trainer.callback_metrics))

    summary = {
        **metrics,
        "dataset": datamodule.name,
        "task": datamodule.task,
        "split": datamodule.split,
        "categorical": datamodule.categorical,
        "scaler": datamodule.scaler,
        "model": config_choice("model", default=type(net).__name__),
        "num_features": datamodule.num_features,
        "num_classes": datamodule.num_classes,
        "class_names": datamodule.class_names,
        "seed": cfg.seed,
        "tags": list(cfg.get("tags") or []),
        "epochs_run": epochs_run,
        "fit_seconds": round(fit_seconds, 3),
        "n_params": sum(p.numel() for p in net.parameters()),
        **datamodule.stats,
        **{k: v for cb in callbacks for k, v in getattr(cb, "summary", {}).items()},
    }
    atomic_write_json(output_dir / "metrics.json", summary)
    # The resolved config beside the results: edge tools rebuild the net from it.
    atomic_write_bytes(output_dir / "config.yaml", OmegaConf.to_yaml(_without_hydra(cfg), resolve=True).encode())
    log_hparams(trainer.loggers, cfg, metrics)
    log.info("metrics.json written to %s", output_dir)
    return summary


def scalar_metrics(metrics: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Lightning's logged values as plain floats (NaN becomes None so the JSON stays valid)."""
    out = {}
    for key, value in metrics.items():
        number = float(value)
        out[key] = None if math.isnan(number) else number
    return dict(sorted(out.items()))


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
def main(cfg: DictConfig) -> float:
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    return sweep_value(train(cfg), cfg.get("optimized_metric"))
