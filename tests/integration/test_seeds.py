"""seeds=[...]: several seeds trained together equal the separate runs of those seeds (CPU); the
full parity of two seeds with PGD and early stopping is in tests/e2e/test_seeds_parity.py."""

from __future__ import annotations

import json

import pytest
import torch

from ids_lightning.core.errors import ConfigError
from ids_lightning.launch import launch
from ids_lightning.training.config import compose

# Dropout on, PGD adversarial training (random starts), early stopping that stops the seeds at
# different epochs: every source of randomness and every per-seed decision is exercised.
SMALL = [
    "debug=limit",
    "trainer.max_epochs=4",
    "callbacks.early_stopping.patience=1",
    "callbacks.early_stopping.min_delta=0.02",
    "model.adversarial.method=pgd",
    "model.adversarial.steps=2",
    "export=none",
    "callbacks.novelty=null",
    "callbacks.unseen_types=null",
    "callbacks.explanations=null",
    "logger=csv",
]
SPLIT_SEED = 42  # the split every seed of the batched run shares


def _record(folder) -> dict:
    return json.loads((folder / "fit.json").read_text())


def _weights(folder) -> dict[str, torch.Tensor]:
    (best,) = (folder / "checkpoints").glob("epoch_*.ckpt")
    return torch.load(best, weights_only=True)["state_dict"]


@pytest.mark.parametrize("seeds", ["[1,1]", "[]"])
def test_seeds_must_be_distinct(tmp_path, seeds):
    with pytest.raises(ConfigError, match="distinct seeds"):
        launch(compose([f"seeds={seeds}"], tmp_path))


def test_seeds_without_validation_test_their_last_weights_like_separate_runs(tmp_path, nsl_kdd_slice):
    quick = ["debug=limit", "trainer.max_epochs=1", "trainer.limit_val_batches=0", "logger=none"]
    quick += ["export=none", "callbacks.novelty=null", "callbacks.early_stopping=null"]
    together = launch(compose([*quick, "seeds=[1,2]"], tmp_path / "together", data_dir=nsl_kdd_slice))
    alone = launch(
        compose([*quick, "seed=2", f"dataset.seed={SPLIT_SEED}"], tmp_path / "alone", data_dir=nsl_kdd_slice)
    )
    second = json.loads((tmp_path / "together" / "seed_2" / "metrics.json").read_text())
    assert second["test/acc"] == pytest.approx(alone["test/acc"], abs=1e-4)
    assert together["test/acc_std"] >= 0 and second["epochs_run"] == 1
