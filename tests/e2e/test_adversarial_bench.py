"""The adversarial-training bench end to end: clean cost and robust gain over two seeds."""

from __future__ import annotations

import json

import pytest


def test_adversarial_training_bench_reports_clean_cost_and_robust_gain(tmp_path, nsl_kdd_slice):
    from ids_lightning.bench.adversarial_training import main

    output = tmp_path / "adversarial.json"
    args = ["--epochs", "2", "--seeds", "1", "2", "--rows", "256", "--override", "debug=limit"]
    result = main([*args, "--data-dir", str(nsl_kdd_slice), "--output", str(output)])
    plain, robust = result["runs"]
    assert (plain["adversarial_training"], robust["adversarial_training"]) == ("none", "pgd")
    assert json.loads(output.read_text()) == result
    fgsm = "test_adv/fgsm/eps_0.1/acc"
    assert robust[fgsm] == pytest.approx(sum(robust[fgsm + "_per_seed"]) / 2, abs=1e-4)
    assert result["robust_gain_fgsm"] == pytest.approx(robust[fgsm] - plain[fgsm], abs=2e-4)
    assert result["clean_cost"] == pytest.approx(plain["test/acc"] - robust["test/acc"], abs=2e-4)
    assert plain["epochs_run"] == [2, 2]
