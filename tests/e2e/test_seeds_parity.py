"""seeds=[...] trained together equal the separate runs of those seeds, epoch by epoch and
weight by weight (three real trainings with PGD adversarial training: the slow tier)."""

from __future__ import annotations

import json

import pytest
import torch

from ids_lightning.launch import launch
from ids_lightning.training.config import compose
from tests.integration.test_seeds import SMALL, SPLIT_SEED, _record, _weights


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
