"""Settings refused before any data is read."""

from __future__ import annotations

from omegaconf import DictConfig

from ids_lightning.core.errors import ConfigError


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
