"""seeds=[...]: several seeds trained together equal the separate runs of those seeds (CPU)."""

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
    "logger=csv",
]
SPLIT_SEED = 42  # the split every seed of the batched run shares


def _record(folder) -> dict:
    return json.loads((folder / "fit.json").read_text())


def _weights(folder) -> dict[str, torch.Tensor]:
    (best,) = (folder / "checkpoints").glob("epoch_*.ckpt")
    return torch.load(best, weights_only=True)["state_dict"]


def test_each_batched_seed_equals_its_separate_run(tmp_path, nsl_kdd_slice):
    batched = tmp_path / "batched"
    summary = launch(compose([*SMALL, "seeds=[1,2]", f"seed={SPLIT_SEED}"], batched, data_dir=nsl_kdd_slice))
    assert summary["runs"] == ["seed_1", "seed_2"]
    epochs = {}
    for seed in (1, 2):
        alone = tmp_path / f"alone_{seed}"
        metrics = launch(compose([*SMALL, f"seed={seed}", f"dataset.seed={SPLIT_SEED}"], alone, data_dir=nsl_kdd_slice))
        together = batched / f"seed_{seed}"
        got, want = _record(together), _record(alone)
        assert got["epochs_run"] == want["epochs_run"] and got["best_checkpoint"] == want["best_checkpoint"]
        epochs[seed] = got["epochs_run"]
        for row_got, row_want in zip(got["history"], want["history"], strict=True):
            assert row_got.keys() == row_want.keys()
            for key, value in row_want.items():
                assert row_got[key] == pytest.approx(value, rel=1e-4, abs=1e-5), (seed, row_want["epoch"], key)
        assert got["metrics"].keys() == want["metrics"].keys()
        for key, value in want["metrics"].items():
            assert got["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), (seed, key)
        for key, value in _weights(alone).items():
            torch.testing.assert_close(_weights(together)[key], value, rtol=1e-4, atol=1e-5)
        # tested, exported and reported as its own run: the same keys and test numbers
        reported = json.loads((together / "metrics.json").read_text())
        assert reported.keys() - {"batched_seeds"} == metrics.keys()
        assert reported["batched_seeds"] == [1, 2] and reported["seed"] == seed
        assert reported["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-4)
        assert (together / "csv" / "metrics.csv").read_text().count("\n") > epochs[seed]  # its curves
    assert summary["test/acc"] == pytest.approx(
        (json.loads((batched / "seed_1/metrics.json").read_text())["test/acc"] + reported["test/acc"]) / 2
    )
    assert epochs[1] != epochs[2], f"the seeds stopped alike ({epochs}): the test checks less"


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
