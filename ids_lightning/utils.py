"""Glue between Hydra configs, Lightning objects and plain JSON."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a config group that maps names to ``_target_`` nodes.

    Entries set to null are switched off (``callbacks.early_stopping=null``).
    """
    if not group:
        return []
    return [hydra.utils.instantiate(node) for node in group.values() if node and "_target_" in node]


def scalar_metrics(metrics: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Lightning's logged values as plain floats (NaN becomes None so the JSON stays valid)."""
    out = {}
    for key, value in metrics.items():
        number = float(value)
        out[key] = None if math.isnan(number) else number
    return dict(sorted(out.items()))


def sweep_value(metrics: Mapping[str, object], name: str | None) -> float | None:
    """The value a sweeper optimises; an unknown name is an error, never a silent None."""
    if name is None:
        return None
    if name not in metrics or metrics[name] is None:
        numeric = sorted(k for k, v in metrics.items() if isinstance(v, float))
        raise KeyError(f"optimized_metric {name!r} is not in metrics.json; available: {numeric}")
    return float(metrics[name])


def config_choice(group: str, default: str) -> str:
    """The option chosen for a config group (``model=cnn_lstm`` gives ``cnn_lstm``)."""
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group, default))
    return default


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
