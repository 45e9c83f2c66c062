"""Nets are sized from the data; the module's loss and metrics agree with hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchmetrics.classification import MulticlassF1Score, MulticlassPrecision, MulticlassRecall

from ids_lightning.models import CNN, CNNLSTM, LSTM, CNNBiLSTM, IDSLitModule
from ids_lightning.models.metrics import macro_scores, per_class_scores

NETS = [CNN, LSTM, CNNLSTM, CNNBiLSTM]


@pytest.mark.parametrize("net_cls", NETS)
@pytest.mark.parametrize(("num_features", "num_classes", "outputs"), [(41, 5, 5), (125, 2, 1), (12, 23, 23)])
def test_nets_are_sized_from_the_data(net_cls, num_features, num_classes, outputs):
    net = net_cls(num_features=num_features, num_classes=num_classes)
    assert net(torch.rand(7, num_features)).shape == (7, outputs)


def test_cnn_lstm_matches_the_seed_paper_size():
    assert sum(p.numel() for p in CNNLSTM(41, 5).parameters()) == 71301


def test_cnn_refuses_too_few_features():
    with pytest.raises(ValueError, match="need more than 3 features"):
        CNN(num_features=3, num_classes=5)


def module(num_classes, **loss):
    net = nn.Linear(4, 1 if num_classes == 2 else num_classes)
    return IDSLitModule(net, optimizer=torch.optim.Adam, class_names=[f"c{i}" for i in range(num_classes)], **loss)


def test_binary_uses_one_logit_and_bce():
    lit = module(2)
    logits = torch.tensor([[2.0], [-1.0]])
    y = torch.tensor([1, 0])
    expected = nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())
    assert torch.isclose(lit.loss(logits, y), expected)
    probs = lit.probabilities(logits)
    assert torch.allclose(probs.sum(1), torch.ones(2)) and probs[0, 1] == torch.sigmoid(torch.tensor(2.0))


def test_multiclass_uses_softmax_cross_entropy():
    lit = module(3)
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    assert torch.isclose(lit.loss(logits, torch.tensor([0])), nn.functional.cross_entropy(logits, torch.tensor([0])))


def test_label_smoothing_matches_torch_and_softens_binary_targets():
    logits, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 2])
    expected = nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
    assert torch.isclose(module(3, label_smoothing=0.1).loss(logits, y), expected)
    binary, target = torch.tensor([[3.0]]), torch.tensor([1])
    soft = nn.functional.binary_cross_entropy_with_logits(binary.squeeze(1), torch.tensor([0.95]))
    assert torch.isclose(module(2, label_smoothing=0.1).loss(binary, target), soft)


def test_focal_loss_down_weights_confident_rows():
    logits, y = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.2, 0.0]]), torch.tensor([0, 1])
    ce = nn.functional.cross_entropy(logits, y, reduction="none")
    p_true = logits.softmax(1)[torch.arange(2), y]
    expected = ((1 - p_true) ** 2 * ce).mean()
    assert torch.isclose(module(3, loss="focal").loss(logits, y), expected)
    assert torch.isclose(module(3, loss="focal", focal_gamma=0.0).loss(logits, y), ce.mean())
    binary = torch.tensor([[3.0], [-0.5]])
    bce = nn.functional.binary_cross_entropy_with_logits(binary.squeeze(1), torch.tensor([1.0, 1.0]), reduction="none")
    p_true = torch.sigmoid(binary.squeeze(1))
    expected = ((1 - p_true) ** 2 * bce).mean()
    assert torch.isclose(module(2, loss="focal").loss(binary, torch.tensor([1, 1])), expected)


@pytest.mark.parametrize(
    ("loss", "match"),
    [
        ({"loss": "hinge"}, "model.loss must be one of"),
        ({"label_smoothing": 1.0}, "label_smoothing must lie"),
        ({"loss": "focal", "label_smoothing": 0.1}, "focal takes hard labels"),
    ],
)
def test_bad_loss_settings_are_refused(loss, match):
    with pytest.raises(ValueError, match=match):
        module(3, **loss)


def test_per_class_scores_from_confusion_matrix():
    confusion = torch.tensor([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    scores = per_class_scores(confusion)
    assert scores["recall"] == [0.8, 0.75, None]
    assert scores["precision"][:2] == [8 / 9, 0.6] and scores["precision"][2] is None
    assert scores["f1"][0] == pytest.approx(2 * 0.8 * (8 / 9) / (0.8 + 8 / 9))
    assert scores["f1"][2] is None  # no rows, never predicted
    missed = per_class_scores(torch.tensor([[5, 0], [3, 0]]))  # class 1 has rows, never predicted
    assert missed["precision"][1] is None and missed["recall"][1] == 0 and missed["f1"][1] == 0


def test_hparams_hold_no_objects():
    lit = module(5)
    assert dict(lit.hparams) == {"class_names": ["c0", "c1", "c2", "c3", "c4"], "monitor": "val/f1_macro"}


def test_auroc_averages_only_classes_present_in_targets():
    from torchmetrics.classification import MulticlassAUROC

    from ids_lightning.models.metrics import PresentClassesAUROC

    probs = torch.softmax(torch.randn(200, 3, generator=torch.Generator().manual_seed(0)), 1)
    target = (probs[:, 1] > probs[:, 0]).long()  # class 2 never occurs
    per_class = MulticlassAUROC(3, average=None)(probs, target)
    assert float(PresentClassesAUROC(3)(probs, target)) == pytest.approx(float(per_class[:2].mean()))


def test_average_precision_per_class_and_over_present_classes_equals_scikit_learn():
    from sklearn.metrics import average_precision_score
    from torchmetrics.classification import MulticlassPrecisionRecallCurve

    from ids_lightning.models.metrics import PresentClassesAveragePrecision, average_precision

    generator = torch.Generator().manual_seed(3)
    probs = torch.softmax(3 * torch.randn(300, 3, generator=generator), 1)
    target = torch.where(torch.rand(300, generator=generator) < 0.7, probs.argmax(1), 0)
    target[target == 2] = 1  # class 2 never occurs: it has no curve and stays out of the mean
    precision, recall, _ = MulticlassPrecisionRecallCurve(3)(probs, target)
    expected = [average_precision_score((target == c).numpy(), probs[:, c].numpy()) for c in (0, 1)]
    assert [average_precision(precision[c], recall[c]) for c in (0, 1)] == pytest.approx(expected)
    assert float(PresentClassesAveragePrecision(3)(probs, target)) == pytest.approx(sum(expected) / 2)


def test_epoch_statistics_equal_torchmetrics():
    generator = torch.Generator().manual_seed(1)
    target = torch.randint(0, 4, (500,), generator=generator)
    predicted = torch.where(torch.rand(500, generator=generator) < 0.6, target, torch.randint(0, 4, (500,)))
    predicted[predicted == 3] = 2  # a class that is never predicted
    confusion = torch.zeros(4, 4, dtype=torch.long).index_put_((target, predicted), torch.ones(500).long(), True)
    scores = macro_scores(confusion)
    assert float(scores["acc"]) == pytest.approx(float((target == predicted).float().mean()))
    for name, metric in [
        ("precision_macro", MulticlassPrecision),
        ("recall_macro", MulticlassRecall),
        ("f1_macro", MulticlassF1Score),
    ]:
        expected = metric(4, average="macro")(predicted, target)
        assert float(scores[name]) == pytest.approx(float(expected), abs=1e-6), name


@pytest.mark.parametrize("window", [1, 4])
def test_embedded_categories_feed_the_net_learned_vectors_in_place_of_codes(window):
    from ids_lightning.core.preprocess import Preprocessor
    from ids_lightning.models.nets import EmbeddedInputs, build_for

    pre = Preprocessor(
        dataset="d", task="t", class_names=["a", "b", "c"], numeric_names=["x", "y"], categorical_names=["proto"],
        categories={"proto": ["icmp", "tcp", "udp"]}, encoding="embedding", scaler="minmax", clip=True,
        numeric_min=[0.0, 0.0], numeric_max=[1.0, 1.0], numeric_integer=[False, False], window=window,
    )  # fmt: skip
    net = build_for(lambda width: CNNLSTM(num_features=width, num_classes=3, window=window), pre)
    assert isinstance(net, EmbeddedInputs) and net.tables[0].weight.shape == (4, 4)  # 3 protocols + unknown
    flows = torch.tensor([[0.5, 0.2, 2.0], [0.5, 0.2, 3.0]])  # the same numbers, tcp and udp
    x = flows if window == 1 else torch.cat([flows, torch.ones(2, 1)], dim=1)[:, None].repeat(1, window, 1)
    if window > 1:
        x[:, 0] = 0  # a padding flow: its embedding must stay zero
        captured = []
        net.net.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0]))
    logits = net(x)
    assert logits.shape == (2, 3) and not torch.allclose(logits[0], logits[1])  # the category matters
    if window > 1:
        assert captured[0].shape[-1] == 2 + 4 + 1 and captured[0][:, 0].abs().sum() == 0


def test_fedprox_term_pulls_the_weights_back_to_the_round_s_global_model():
    """After ``anchor(mu)`` the training loss gains mu/2 ||w - w_anchor||^2, whose gradient is
    mu * (w - w_anchor) (the term's own backward, checked here); ``anchor(0)`` removes it."""
    model = module(3)
    model.anchor(0.5)
    with torch.no_grad():
        for parameter in model.net.parameters():
            parameter.add_(1.0)
    n_params = sum(p.numel() for p in model.net.parameters())
    assert float(model._proximal_term()) == pytest.approx(0.5 / 2 * n_params)
    model._proximal_term().backward()
    assert all(torch.allclose(p.grad, torch.full_like(p, 0.5)) for p in model.net.parameters())
    model.anchor(0)
    assert model._proximal is None
