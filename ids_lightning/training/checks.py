"""Settings refused before any data is read."""

from __future__ import annotations

import math

from omegaconf import DictConfig, OmegaConf

from ids_lightning.core.errors import ConfigError


def check_config(cfg: DictConfig) -> None:
    """Refuse settings that would train nothing or select on the test set, before any data is
    read (the ``dataset.*`` settings are checked by :class:`~ids_lightning.data.options.DataOptions`)."""
    seeds = cfg.get("seeds")
    if seeds is not None and (len(seeds) == 0 or len(set(seeds)) != len(seeds)):
        raise ConfigError(f"seeds must be a list of distinct seeds, not {list(seeds)}")
    if seeds and cfg.get("federated"):
        raise ConfigError("seeds=[...] and experiment=federated do not combine: run the federation once per seed")
    if cfg.trainer.get("max_epochs") is not None and cfg.trainer.max_epochs < 1 and not cfg.trainer.get("max_steps"):
        raise ConfigError(f"trainer.max_epochs must be at least 1, not {cfg.trainer.max_epochs}")
    optimizer = (cfg.get("model") or {}).get("optimizer") or {}
    for key in ("lr", "weight_decay"):
        value = optimizer.get(key)
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0):
            raise ConfigError(f"model.optimizer.{key} must be a finite number of at least 0, not {value!r}")
    if optimizer.get("lr") == 0:
        raise ConfigError("model.optimizer.lr=0 trains nothing")
    metric = cfg.get("optimized_metric")
    if metric is not None and not str(metric).startswith(("val/", "train/")):
        raise ConfigError(f"optimized_metric must be a validation (or training) metric, not {metric!r}")
    dataset = cfg.get("dataset")
    if dataset is not None and dataset.get("refit"):
        callbacks = cfg.get("callbacks") or {}
        fixes = {
            "early_stopping": "callbacks.early_stopping=null",
            "model_checkpoint": "callbacks.model_checkpoint.monitor=null",
        }
        chooser = [fix for name, fix in fixes.items() if (callbacks.get(name) or {}).get("monitor") is not None]
        if chooser:
            raise ConfigError(
                "dataset.refit trains on the validation rows, so they cannot choose the epoch: set "
                f"{' and '.join(chooser)} and trainer.max_epochs to the epochs chosen before the refit"
            )
    nested = _nested_targets(OmegaConf.to_container(dataset, resolve=False), "dataset") if dataset else []
    if nested:
        raise ConfigError(
            f"{nested[0]} is not a setting: a dataset is built by its own _target_ only, and its "
            "options are plain values (each spec's read_options are in docs/datasets.md)"
        )


def _nested_targets(node: object, prefix: str) -> list[str]:
    """Dotted keys of the ``_target_`` entries inside ``node``'s values (not ``node``'s own)."""
    if isinstance(node, dict):
        children = [(f"{prefix}.{key}", value) for key, value in node.items()]
    elif isinstance(node, list):
        children = [(f"{prefix}.{index}", value) for index, value in enumerate(node)]
    else:
        return []
    found = []
    for path, value in children:
        if isinstance(value, dict) and "_target_" in value:
            found.append(f"{path}._target_")
        found += _nested_targets(value, path)
    return found
