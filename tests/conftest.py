"""Fixtures, the cost tiers and the hypothesis profiles.

Tiers by folder: ``unit`` (no training and no data folder, seconds), ``integration`` (the real
files and tiny trainings on them) and ``e2e`` (marked ``slow``: sweeps, kill-and-resume,
notebooks, Optuna, real-scale runs).
Under ``CI`` hypothesis is derandomized (the same examples every run); locally it explores.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from omegaconf import DictConfig

from ids_lightning.training.config import compose
from tests.helpers import DATA_DIR, NSL_KDD_TEST, NSL_KDD_TRAIN

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: one thread each (also in the runs and notebook
    # kernels they start), or the workers' thread pools fight over the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


DATA_FIXTURES = {"data_dir", "nsl_kdd_slice"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """e2e tests are slow; unit tests run without the data folder (those that read the shared
    data belong to the integration tier)."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "e2e" in parts:
            item.add_marker(pytest.mark.slow)
        if "unit" in parts and DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid} reads the shared data: move it to tests/integration")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real shared data; its absence is a failure, not a skip (CI must exercise it)."""
    if not NSL_KDD_TRAIN.is_file():
        pytest.fail(f"real data not found under {DATA_DIR}: set IDS_DATA_DIR (see README)")
    return DATA_DIR


@pytest.fixture
def make_config(tmp_path: Path):
    """Configs composed as ``train.py`` would, with the run folder in ``tmp_path`` and the shared
    data as the data root (composing reads no data)."""

    def make(*overrides: str) -> DictConfig:
        return compose(list(overrides), tmp_path, data_dir=DATA_DIR)

    return make


@pytest.fixture(scope="session")
def nsl_kdd_slice(tmp_path_factory) -> Path:
    """The first 6,000 training and 2,000 test rows of NSL-KDD, as the dataset's own files."""
    root = tmp_path_factory.mktemp("data")
    (root / "nsl_kdd").mkdir()
    for source, rows in ((NSL_KDD_TRAIN, 6000), (NSL_KDD_TEST, 2000)):
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rt") as handle:
            lines = [next(handle) for _ in range(rows)]
        (root / "nsl_kdd" / source.name.removesuffix(".gz")).write_text("".join(lines))
    return root
