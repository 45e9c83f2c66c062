"""OmegaConf resolvers used by ``conf/`` (registered once, before Hydra composes)."""

from __future__ import annotations

import secrets
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"
# One random id per process: with the time, it keeps run folders apart even for two sweeps
# launched in the same second, while every job of one sweep agrees on its sweep folder.
RUN_ID = secrets.token_hex(3)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: RUN_ID)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def compose(overrides: list[str], output_dir: str | Path, data_dir: str | Path | None = None) -> DictConfig:
    """Compose ``conf/train.yaml`` outside ``@hydra.main`` (tests, benchmarks, search drivers),
    with the run folder at ``output_dir``, as ``train.py`` would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
        if data_dir is not None:
            cfg.paths.data_dir = str(data_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg
