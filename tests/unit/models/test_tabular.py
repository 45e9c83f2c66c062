"""TabM and FT-Transformer: sized from the data, categories taken as codes, members trained one
by one and averaged as probabilities, exported to ONNX with parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ids_lightning.core.errors import ConfigError
from ids_lightning.models import FTTransformer, IDSLitModule, TabM
from ids_lightning.models.tabular import mean_of_members, member_logits

SMALL = {TabM: {"k": 4, "width": 32}, FTTransformer: {"d_token": 16, "heads": 4}}


def codes_in(x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """``x`` with its last ``len(sizes)`` columns replaced by category codes."""
    x = x.clone()
    for j, size in enumerate(sizes):
        x[:, x.shape[1] - len(sizes) + j] = torch.randint(0, size, (len(x),)).float()
    return x


@pytest.mark.parametrize("net_cls", [TabM, FTTransformer])
@pytest.mark.parametrize(("num_classes", "outputs"), [(5, 5), (2, 1)])
@pytest.mark.parametrize("categories", [None, [4, 7]])
def test_tabular_nets_are_sized_from_the_data(net_cls, num_classes, outputs, categories):
    net = net_cls(num_features=10, num_classes=num_classes, categories=categories, **SMALL[net_cls])
    assert net(codes_in(torch.rand(6, 10), categories or [])).shape == (6, outputs)


@pytest.mark.parametrize("net_cls", [TabM, FTTransformer])
def test_a_category_code_changes_the_prediction_and_windows_are_refused(net_cls):
    torch.manual_seed(0)
    net = net_cls(num_features=5, num_classes=3, categories=[3], **SMALL[net_cls]).eval()
    x = torch.tensor([[0.2, 0.4, 0.6, 0.8, 1.0], [0.2, 0.4, 0.6, 0.8, 2.0]])
    logits = net(x)
    assert not torch.allclose(logits[0], logits[1])
    with pytest.raises(ConfigError, match=r"dataset.window=1"):
        net_cls(num_features=5, num_classes=3, window=4)


@pytest.mark.parametrize("binary", [False, True])
def test_the_ensemble_prediction_is_the_mean_of_member_probabilities(binary):
    members = torch.randn(9, 6, 1 if binary else 4) * 30  # far into saturation: no inf may appear
    logits = mean_of_members(members, binary)
    if binary:
        expected = torch.sigmoid(members.squeeze(-1).double()).mean(1)
        assert torch.isfinite(logits).all()
        assert torch.allclose(torch.sigmoid(logits.squeeze(-1)).double(), expected, atol=1e-6)
    else:
        expected = members.double().softmax(-1).mean(1)
        assert torch.allclose(logits.softmax(-1).double(), expected, atol=1e-6)


def test_tabm_trains_each_member_on_its_own_loss():
    """The module scores every member's logits; its loss is the mean of the members' losses,
    not the loss of their average (which would let members lean on each other)."""
    torch.manual_seed(0)
    net = TabM(num_features=6, num_classes=3, **SMALL[TabM])
    lit = IDSLitModule(net, optimizer=torch.optim.Adam, class_names=["a", "b", "c"]).eval()  # no dropout
    x, y = torch.rand(16, 6), torch.randint(0, 3, (16,))
    members = member_logits(net, x)
    assert members.shape == (16, 4, 3) and not torch.allclose(members[:, 0], members[:, 1])
    per_member = torch.stack([torch.nn.functional.cross_entropy(members[:, j], y) for j in range(4)])
    losses = []
    lit.step_math(x, y, torch.arange(16), lambda loss: losses.append(loss.detach()))
    assert torch.isclose(losses[0], per_member.mean(), atol=1e-5)
    assert not torch.isclose(losses[0], torch.nn.functional.cross_entropy(net(x), y), atol=1e-4)
    assert member_logits(torch.nn.Linear(6, 3), x).shape == (16, 1, 3)  # any other net: one member


@pytest.mark.parametrize("net_cls", [TabM, FTTransformer])
@pytest.mark.parametrize("num_classes", [5, 2])
def test_onnx_export_matches_torch(net_cls, num_classes, tmp_path):
    import onnxruntime as ort

    from ids_lightning.training.export import ProbabilityHead, export_onnx

    torch.manual_seed(0)
    net = net_cls(num_features=10, num_classes=num_classes, categories=[4, 7], **SMALL[net_cls]).eval()
    head = ProbabilityHead(net, num_classes == 2).eval()
    x = codes_in(torch.rand(300, 10), [4, 7])
    export_onnx(head, (10,), tmp_path / "model.onnx", [f"c{i}" for i in range(num_classes)])
    onnx_probabilities = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"features": x.numpy()})[0]
    with torch.no_grad():
        torch_probabilities = head(x).numpy()
    assert onnx_probabilities.shape == (300, num_classes)
    assert np.abs(onnx_probabilities - torch_probabilities).max() <= 1e-5


def test_build_for_hands_codes_to_nets_that_embed_categories_themselves():
    from ids_lightning.core.preprocess import Preprocessor
    from ids_lightning.models.nets import EmbeddedInputs, build_for

    pre = Preprocessor(
        dataset="d", task="t", class_names=["a", "b", "c"], numeric_names=["x", "y"], categorical_names=["proto"],
        categories={"proto": ["icmp", "tcp", "udp"]}, encoding="embedding", scaler="minmax", clip=True,
        numeric_min=[0.0, 0.0], numeric_max=[1.0, 1.0], numeric_integer=[False, False],
    )  # fmt: skip
    make = lambda width, **codes: TabM(num_features=width, num_classes=3, **SMALL[TabM], **codes)  # noqa: E731
    net = build_for(make, pre, TabM)
    assert isinstance(net, TabM) and net.categories == [4] and net.numeric == 2  # 3 protocols + unknown
    assert isinstance(build_for(make, pre), EmbeddedInputs)
