"""FGSM/PGD maths: constraints hold for every input, one PGD step is FGSM, gradients in inference mode."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.models import CNNLSTM, IDSLitModule
from ids_lightning.models.attacks import Constraints, fgsm, pgd


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
    constraints = Constraints.none((12,))
    one = pgd(net, module.loss, x, y, 0.1, constraints, steps=1, step_size=0.1, random_start=False)
    assert torch.equal(one, fgsm(net, module.loss, x, y, 0.1, constraints))
    assert not torch.equal(one, x) and (one - x).abs().max() <= 0.1 + 1e-7
    assert torch.equal(fgsm(net, module.loss, x, y, 0.0, constraints), x)


def test_gradients_work_inside_inference_mode():
    net = CNNLSTM(12, 3).eval()
    module = IDSLitModule(net, torch.optim.Adam, ["normal", "b", "c"])
    with torch.inference_mode():
        x, y = torch.rand(8, 12), torch.randint(0, 3, (8,))
        adversarial = fgsm(net, module.loss, x.clone(), y.clone(), 0.05, Constraints.none((12,)))
    assert (adversarial - x).abs().max() == pytest.approx(0.05)


def test_rounding_under_the_quantile_scaler_is_refused():
    pre = toy_preprocessor()
    pre.scaler, pre.numeric_quantiles, pre.numeric_levels = "quantile", [[0.0, 10.0], [0.0, 1.0]], [[0.0, 1.0]] * 2
    assert Constraints.from_preprocessor(pre).mutable.tolist() == [True, True, False, False, False]
    with pytest.raises(ValueError, match="round_integers=false"):
        Constraints.from_preprocessor(pre, round_integers=True)


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_training_attacks_equal_eval_mode_attacks(method):
    """Adversarial training attacks in train mode (cuDNN's RNN kernels, capturable in a CUDA
    graph) with dropout off: the examples of an eval-mode attack, and dropout comes back."""
    torch.manual_seed(0)
    net = CNNLSTM(12, 3, dropout=0.5)
    net.lstm.dropout = 0.5  # between its two layers too
    adversarial = {"method": method, "eps": 0.1, "ratio": 0.5, "steps": 2}
    module = IDSLitModule(net, torch.optim.Adam, ["normal", "b", "c"], adversarial=adversarial)
    x, y = torch.rand(64, 12), torch.randint(0, 3, (64,))
    net.train()
    torch.manual_seed(1)  # PGD's random start
    mixed = module._with_adversarial_rows(x, y)
    assert net.training and net.lstm.dropout == 0.5 and [m.p for m in net.modules() if hasattr(m, "p")] == [0.5]
    net.eval()
    constraints = Constraints.none((12,))
    torch.manual_seed(1)
    if method == "fgsm":
        reference = fgsm(net, module.loss, x[:32], y[:32], 0.1, constraints)
    else:
        reference = pgd(net, module.loss, x[:32], y[:32], 0.1, constraints, steps=2)
    torch.testing.assert_close(mixed[:32], reference, rtol=0, atol=1e-6)
    assert torch.equal(mixed[32:], x[32:]) and not torch.equal(mixed[:32], x[:32])
