"""FGSM/PGD on trained models: eps = 0 is clean, attacks hurt, the callback works for every model."""

from __future__ import annotations

import json

import pytest

from ids_lightning.training.run import train
from tests.helpers import trained_run

MODELS = ["cnn", "lstm", "cnn_lstm", "cnn_bilstm"]


@pytest.fixture(scope="module")
def attacked_run(tmp_path_factory, data_dir):
    """A short cnn run on NSL-KDD, attacked with FGSM at eps 0 and 0.2 on all of KDDTest+
    (cnn_lstm is attacked in the every-model test and in notebooks/02_adversarial)."""
    return trained_run(
        tmp_path_factory,
        "adv_run",
        "model=cnn",
        "debug=limit",
        "trainer.limit_test_batches=1.0",
        "callbacks=adversarial",
        "export=none",
        "callbacks.adversarial_eval.eps=[0,0.2]",
        "callbacks.adversarial_eval.attacks=[fgsm]",
        "callbacks.adversarial_eval.max_rows=null",
    )


def test_eps_zero_gives_exactly_the_clean_metrics(attacked_run):
    _, metrics = attacked_run
    assert metrics["test_adv/rows"] == 22544
    assert metrics["test_adv/fgsm/eps_0/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert metrics["test_adv/fgsm/eps_0/f1_macro"] == pytest.approx(metrics["test/f1_macro"], abs=1e-5)
    assert metrics["test_adv/fgsm/eps_0/evasion_rate"] == 0.0


def test_large_fgsm_lowers_accuracy_and_raises_evasion(attacked_run):
    folder, metrics = attacked_run
    assert metrics["test_adv/fgsm/eps_0.2/acc"] < metrics["test_adv/fgsm/eps_0/acc"] - 0.05
    assert metrics["test_adv/fgsm/eps_0.2/evasion_rate"] > 0.05
    assert (folder / "robustness.png").is_file()
    assert (
        json.loads((folder / "metrics.json").read_text())["test_adv/fgsm/eps_0.2/acc"]
        == metrics["test_adv/fgsm/eps_0.2/acc"]
    )


@pytest.mark.parametrize("model", MODELS)
def test_callback_and_adversarial_training_work_for_every_model(make_config, tmp_path, model):
    metrics = train(
        make_config(
            f"model={model}",
            "debug=fast_dev_run",
            "callbacks=adversarial",
            "export=none",
            "callbacks.adversarial_eval.max_rows=256",
            "callbacks.adversarial_eval.eps=[0.1]",
            "callbacks.adversarial_eval.pgd_steps=2",
            "model.adversarial.method=pgd",
            "model.adversarial.steps=2",
        )
    )
    for attack in ("fgsm", "pgd"):
        assert 0 <= metrics[f"test_adv/{attack}/eps_0.1/acc"] <= 1
        assert 0 <= metrics[f"test_adv/{attack}/eps_0.1/evasion_rate"] <= 1
    assert metrics["train/loss"] is not None and (tmp_path / "robustness.png").is_file()
