"""Constants and helpers that several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from ids_lightning.core.files import find_files
from ids_lightning.data import FlowDataModule
from ids_lightning.training.config import PROJECT_ROOT, QUIET, compose, instantiate

DATA_DIR = Path(os.environ.get("IDS_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")).resolve()
# plain or gzipped, as the project reads them
NSL_KDD_TRAIN = next(iter(find_files("nsl_kdd/KDDTrain+.txt", DATA_DIR)), DATA_DIR / "nsl_kdd" / "KDDTrain+.txt")
NSL_KDD_TEST = next(iter(find_files("nsl_kdd/KDDTest+.txt", DATA_DIR)), DATA_DIR / "nsl_kdd" / "KDDTest+.txt")

# One well-formed NSL-KDD row.
GOOD = (
    "0,tcp,http,SF,215,45076,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,1,1,0.00,0.00,0.00,0.00,1.00,0.00,0.00,"
    "0,0,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,normal,21"
)

# Sites of the federated tests: near-IID, a validation share big enough for tiny slices
FEDERATED_SITES = ["federated.partition=dirichlet", "federated.alpha=10", "dataset.val_fraction=0.2"]


def run_if(cuda: bool = False, module: str | None = None, program: str | None = None) -> pytest.MarkDecorator:
    """Skip a test, saying why, unless this machine has what it needs: a CUDA device, an
    importable module, a program on the PATH (lightning-hydra-template's ``RunIf``)."""
    missing = []
    if cuda:
        import torch

        if not torch.cuda.is_available():
            missing.append("a CUDA device")
    if module is not None and importlib.util.find_spec(module) is None:
        missing.append(f"the {module} module")
    if program is not None and shutil.which(program) is None:
        missing.append(f"{program} on the PATH")
    return pytest.mark.skipif(bool(missing), reason="needs " + " and ".join(missing))


def datamodule(dataset: str = "nsl_kdd", data_dir: Path = DATA_DIR, setup: bool = True, **overrides) -> FlowDataModule:
    """The DataModule as ``ids_lightning/conf/dataset/<dataset>.yaml`` builds it, with keyword overrides."""
    cfg = compose([f"dataset={dataset}"], "unused", data_dir=data_dir)
    dm = instantiate(cfg.dataset, **{"output_dir": None, **overrides})
    if setup:
        dm.setup()
    return dm


def trained_run(tmp_path_factory: pytest.TempPathFactory, name: str, *overrides: str) -> tuple[Path, dict]:
    """A short training run in a folder of its own, for module-scoped fixtures: (folder, metrics)."""
    from ids_lightning.training.run import train

    folder = tmp_path_factory.mktemp(name)
    return folder, train(compose([*QUIET, *overrides], folder, data_dir=DATA_DIR))


# A small real run (BoT-IoT sample, cnn, 4 epochs) for the reliability tests.
SMALL_RUN = [
    "dataset=bot_iot",
    "model=cnn",
    "trainer.max_epochs=4",
    *QUIET,
    "export=none",
    "callbacks.early_stopping=null",
]


def federated_run(folder: Path, data_dir: Path, *overrides: str) -> dict:
    """A federated run on the simulation engine with the tests' near-IID sites."""
    from ids_lightning.launch import launch

    return launch(compose(["experiment=federated", *FEDERATED_SITES, *overrides], folder, data_dir=data_dir))


def comparable(metrics: dict) -> dict:
    """Metrics without the ones that measure time."""
    return {k: v for k, v in metrics.items() if k != "fit_seconds"}
