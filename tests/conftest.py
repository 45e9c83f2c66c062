"""Shared fixtures: the real data root and composed configs with a temporary run folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from ids_lightning.config import PROJECT_ROOT, compose

DATA_DIR = Path(os.environ.get("IDS_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")).resolve()
NSL_KDD_TRAIN = DATA_DIR / "nsl_kdd" / "KDDTrain+.txt.gz"
NSL_KDD_TEST = DATA_DIR / "nsl_kdd" / "KDDTest+.txt.gz"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: one thread each (also in the runs and notebook
    # kernels they start), or the workers' thread pools fight over the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real shared data; its absence is a failure, not a skip (CI must exercise it)."""
    if not NSL_KDD_TRAIN.is_file():
        pytest.fail(f"real data not found under {DATA_DIR}: set IDS_DATA_DIR (see README)")
    return DATA_DIR


@pytest.fixture
def make_config(tmp_path: Path, data_dir: Path):
    def make(*overrides: str) -> DictConfig:
        return compose(list(overrides), tmp_path, data_dir=DATA_DIR)

    return make


# No logger, no progress bar: what module-scoped runs and subprocess runs in tests share.
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "callbacks.progress_bar=null"]


def trained_run(tmp_path_factory: pytest.TempPathFactory, name: str, *overrides: str) -> tuple[Path, dict]:
    """A short training run in a folder of its own, for module-scoped fixtures: (folder, metrics)."""
    from ids_lightning.train import train

    folder = tmp_path_factory.mktemp(name)
    return folder, train(compose([*QUIET, *overrides], folder, data_dir=DATA_DIR))
