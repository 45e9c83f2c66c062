"""Rebuild a finished run from its folder: config, datamodule, net with its best weights."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ids_lightning.config import register_resolvers
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.deploy import ProbabilityHead, load_net_weights


def best_checkpoint(run_dir: Path) -> Path:
    """The monitored best checkpoint (``epoch_*.ckpt``), else ``last.ckpt``."""
    checkpoints = sorted(p for p in (run_dir / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt")
    return (checkpoints or [run_dir / "checkpoints" / "last.ckpt"])[-1]


def rebuild(run_dir: Path) -> tuple[DictConfig, object, nn.Module]:
    """``(config, datamodule set up, net with the best checkpoint's weights)`` of a run folder."""
    register_resolvers()
    cfg = OmegaConf.load(run_dir / "config.yaml")
    datamodule = hydra.utils.instantiate(cfg.dataset, output_dir=None)
    datamodule.setup("test")
    return cfg, datamodule, best_net(run_dir, cfg, datamodule.num_features, datamodule.num_classes)


def best_net(run_dir: Path, cfg: DictConfig, num_features: int, num_classes: int) -> nn.Module:
    """The run's net, sized as trained, with the best checkpoint's weights, in eval mode."""
    net = hydra.utils.instantiate(cfg.model.net, num_features=num_features, num_classes=num_classes)
    return load_net_weights(net, best_checkpoint(run_dir)).eval()


def load_best_model(run_dir: Path) -> nn.Module:
    """A finished run's best net as the exported model (probabilities out), sized from
    ``preprocess.json``: no data files needed."""
    from ids_lightning.core.preprocess import Preprocessor

    pre = Preprocessor.load(run_dir / "preprocess.json")
    net = best_net(run_dir, OmegaConf.load(run_dir / "config.yaml"), pre.num_features, len(pre.class_names))
    return ProbabilityHead(net, len(pre.class_names) == 2).eval()


def update_metrics(run_dir: Path, values: dict) -> None:
    """Merge ``values`` into the run's ``metrics.json`` (atomically)."""
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    atomic_write_json(path, {**metrics, **values})
