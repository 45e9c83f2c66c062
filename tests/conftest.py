"""Shared fixtures: the real data root and Hydra composition without a Hydra app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ids_lightning.config import CONFIG_DIR, PROJECT_ROOT, register_resolvers

register_resolvers()
DATA_DIR = Path(os.environ.get("IDS_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")).resolve()
NSL_KDD_TRAIN = DATA_DIR / "nsl_kdd" / "KDDTrain+.txt.gz"
NSL_KDD_TEST = DATA_DIR / "nsl_kdd" / "KDDTest+.txt.gz"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real shared data; its absence is a failure, not a skip (CI must exercise it)."""
    if not NSL_KDD_TRAIN.is_file():
        pytest.fail(f"real data not found under {DATA_DIR}: set IDS_DATA_DIR (see README)")
    return DATA_DIR


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/train.yaml`` as ``train.py`` would, with the run folder at ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.data_dir = str(DATA_DIR)
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def make_config(tmp_path: Path, data_dir: Path):
    def make(*overrides: str) -> DictConfig:
        return compose_config(list(overrides), tmp_path)

    return make
