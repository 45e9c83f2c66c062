"""FGSM/PGD: constraints hold, eps = 0 is clean, attacks hurt a trained model, every model works."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.models import CNNLSTM, IDSLitModule
from ids_lightning.models.attacks import Constraints, fgsm, pgd
from ids_lightning.train import train
from tests.conftest import trained_run

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
        "callbacks.onnx_export=null",
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


def toy_preprocessor() -> Preprocessor:
    return Preprocessor(
        dataset="toy",
        task="t",
        class_names=["a", "b"],
        numeric_names=["bytes", "rate"],
        categorical_names=["proto"],
        categories={"proto": ["tcp", "udp"]},
        encoding="onehot",
        scaler="log_minmax",
        clip=True,
        numeric_min=[0.0, 0.0],
        numeric_max=[10.0, 1.0],
        numeric_integer=[True, False],
    )


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.lists(st.floats(0, 1), min_size=5, max_size=5), min_size=1, max_size=8),
    step=st.lists(st.floats(-1, 1), min_size=5, max_size=5),
    eps=st.floats(0, 0.5),
)
def test_every_perturbed_input_respects_the_constraints(x, step, eps):
    pre = toy_preprocessor()
    constraints = Constraints.from_preprocessor(pre, round_integers=True)
    clean = torch.tensor(x, dtype=torch.float32)
    adversarial = constraints.project(clean + torch.tensor(step), clean, eps)
    categorical = torch.tensor(pre.categorical_mask)
    assert torch.equal(adversarial[:, categorical], clean[:, categorical])
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    changed = adversarial != clean
    # rounding may move a count by less than one raw unit beyond eps; rates stay inside eps
    assert ((adversarial - clean).abs()[:, 1] <= eps + 1e-6).all()
    raw = torch.expm1(adversarial[:, 0].double() * 10.0)
    assert torch.allclose(raw[changed[:, 0]], raw[changed[:, 0]].round(), atol=1e-6)
    if eps == 0:
        assert torch.equal(adversarial, clean)


def test_pgd_with_one_step_and_no_random_start_is_fgsm():
    torch.manual_seed(0)
    net = CNNLSTM(12, 3, dropout=0.0).eval()
    module = IDSLitModule(net, torch.optim.Adam, ["normal", "b", "c"])
    x, y = torch.rand(64, 12), torch.randint(0, 3, (64,))
    constraints = Constraints.none(12)
    one = pgd(net, module.loss, x, y, 0.1, constraints, steps=1, step_size=0.1, random_start=False)
    assert torch.equal(one, fgsm(net, module.loss, x, y, 0.1, constraints))
    assert not torch.equal(one, x) and (one - x).abs().max() <= 0.1 + 1e-7
    assert torch.equal(fgsm(net, module.loss, x, y, 0.0, constraints), x)


def test_gradients_work_inside_inference_mode():
    net = CNNLSTM(12, 3).eval()
    module = IDSLitModule(net, torch.optim.Adam, ["normal", "b", "c"])
    with torch.inference_mode():
        x, y = torch.rand(8, 12), torch.randint(0, 3, (8,))
        adversarial = fgsm(net, module.loss, x.clone(), y.clone(), 0.05, Constraints.none(12))
    assert (adversarial - x).abs().max() == pytest.approx(0.05)


@pytest.mark.parametrize("model", MODELS)
def test_callback_and_adversarial_training_work_for_every_model(make_config, tmp_path, model):
    metrics = train(
        make_config(
            f"model={model}",
            "debug=fast_dev_run",
            "callbacks=adversarial",
            "callbacks.onnx_export=null",
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
