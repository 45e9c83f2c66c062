"""Windows over each host's preceding flows: construction, padding, context features, block
splits, windowed batches and nets (numpy and small tensors; real captures in integration)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.splits import grouped_split
from ids_lightning.core.windows import (
    CONTEXT_FEATURES,
    PAD,
    block_groups,
    check_window,
    context_features,
    padded_table,
    pointing_at_pad,
    window_index,
    windowed,
)
from ids_lightning.datasets import get_spec
from ids_lightning.models.attacks import Constraints, fgsm
from ids_lightning.models.batches import InMemoryBatches, WindowedFeatures
from ids_lightning.models.nets import CNN, CNNLSTM, LSTM, CNNBiLSTM, Transformer


def test_a_window_is_the_flow_and_its_hosts_preceding_flows_left_padded():
    groups = np.array([0, 1, 0, 0, 1, 0])  # two hosts, interleaved
    windows = window_index(groups, 3)
    assert windows.tolist() == [
        [PAD, PAD, 0],
        [PAD, PAD, 1],
        [PAD, 0, 2],
        [0, 2, 3],
        [PAD, 1, 4],
        [2, 3, 5],
    ]
    assert window_index(groups, 1).tolist() == [[i] for i in range(6)]


def test_padding_rows_are_zero_and_flows_carry_a_presence_channel():
    features = np.arange(6, dtype=np.float32).reshape(3, 2) + 1
    inputs = windowed(features, window_index(np.zeros(3, dtype=np.int64), 2))
    assert inputs.shape == (3, 2, 3)
    first = inputs[0]
    assert first[0].tolist() == [0, 0, 0]  # padding
    assert first[1].tolist() == [1, 2, 1]  # flow 0 and its presence
    assert inputs[2].tolist() == [[3, 4, 1], [5, 6, 1]]
    table = padded_table(features)
    assert table.shape == (4, 3) and not table[3].any()
    assert pointing_at_pad(np.array([[PAD, 1]]), 3).tolist() == [[3, 1]]


def test_context_features_summarise_the_window():
    windows = window_index(np.zeros(4, dtype=np.int64), 3)
    inputs = {
        "time": np.array([0.0, 10.0, 20.0, 50.0]),
        "peer": np.array(["a", "a", "b", "a"]),
        "port": np.array(["23", "23", "23", "80"]),
        "unanswered": np.array([True, False, True, True]),
    }
    ctx = dict(zip(CONTEXT_FEATURES, context_features(windows, inputs).T))
    # last flow: window = flows 1, 2, 3
    assert ctx["ctx_flows"].tolist() == [1, 2, 3, 3]
    assert ctx["ctx_unanswered"][3] == pytest.approx(2 / 3)
    assert ctx["ctx_same_peer"][3] == pytest.approx(2 / 3)  # a, b, a vs a
    assert ctx["ctx_same_port"][3] == pytest.approx(1 / 3)  # 23, 23, 80 vs 80
    assert ctx["ctx_gap_mean"][3] == pytest.approx(20.0)  # gaps 10 and 30
    assert ctx["ctx_gap_std"][3] == pytest.approx(10.0)
    assert ctx["ctx_gap_mean"][0] == 0 and ctx["ctx_gap_std"][0] == 0  # a single flow has no gap
    # computing a subset of rows gives the same numbers (the detector does that per chunk)
    assert np.array_equal(context_features(windows, inputs, rows=np.array([3])), context_features(windows, inputs)[3:])


def test_block_split_never_cuts_a_block():
    groups = np.repeat([0, 1, 2, 3], 100)
    blocks = block_groups(groups, 10)
    assert len(np.unique(blocks)) == 40
    labels = np.where(groups % 2 == 0, "benign", "malicious").astype(object)
    parts = grouped_split(labels.astype(str), blocks, [0.7, 0.15, 0.15], seed=1)
    assert sum(len(p) for p in parts) == 400
    for part in parts:
        members = set(part.tolist())
        for block in np.unique(blocks[part]):  # every block lies wholly in one part
            assert set(np.flatnonzero(blocks == block).tolist()) <= members
    assert {labels[p].tolist().count("malicious") > 0 for p in parts} == {True}  # stratified


def test_datasets_without_hosts_and_times_refuse_windows():
    with pytest.raises(ConfigError, match="no source hosts and times"):
        check_window(8, get_spec("nsl_kdd"))
    with pytest.raises(ConfigError, match="whole number"):
        check_window(0, get_spec("iot23"))
    check_window(1, get_spec("nsl_kdd"))
    check_window(32, get_spec("iot23"))


def test_windowed_batches_gather_rows_per_step_without_copying_the_split():
    features = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    windows = window_index(np.array([0, 0, 1, 0, 1, 1]), 4)
    x = WindowedFeatures(
        torch.from_numpy(padded_table(features.numpy())), torch.from_numpy(pointing_at_pad(windows, 6).astype(np.int32))
    )
    assert x.shape == (6, 4, 3) and len(x) == 6
    assert x.nbytes == 7 * 3 * 4 + 6 * 4 * 4  # the table and int32 row numbers, nothing window-fold
    expected = windowed(features.numpy(), windows)[np.arange(6)]
    y = torch.arange(6)
    chunk = next(iter(InMemoryBatches(x, y, batch_size=6, shuffle=True, seed=3, steps_per_chunk=2)))
    xb, yb = next(chunk.batches())
    assert torch.equal(xb, torch.from_numpy(expected)[yb])
    with pytest.raises(ValueError, match="int32"):
        WindowedFeatures(x.table, x.windows.long())


NETS = [CNN, LSTM, CNNLSTM, CNNBiLSTM, Transformer]


@pytest.mark.parametrize("net_cls", NETS)
def test_nets_read_a_window_and_ignore_padding_before_the_first_flow(net_cls):
    torch.manual_seed(0)
    net = net_cls(num_features=10, num_classes=3, window=8).eval()
    x = torch.rand(4, 8, 11)
    x[..., -1] = 1
    assert net(x).shape == (4, 3)
    assert sum(p.numel() for p in net.parameters()) > 0
    # different history, same current flow: the output changes (the window is read)
    other = x.clone()
    other[:, :-1, :-1] = torch.rand(4, 7, 10)
    assert not torch.allclose(net(x), net(other))


def test_transformer_attention_never_reads_padding():
    torch.manual_seed(0)
    net = Transformer(num_features=5, num_classes=2, window=4).eval()
    x = torch.zeros(2, 4, 6)
    x[:, 2:, :-1] = torch.rand(2, 2, 5)
    x[:, 2:, -1] = 1
    garbage = x.clone()
    garbage[:, :2, :-1] = 99.0  # values under padding positions (presence 0)
    assert torch.allclose(net(x), net(garbage), atol=1e-6)


@pytest.mark.parametrize("net_cls", NETS)
def test_one_flow_nets_are_unchanged_by_the_window_option(net_cls):
    torch.manual_seed(0)
    default = net_cls(num_features=12, num_classes=2)
    torch.manual_seed(0)
    explicit = net_cls(num_features=12, num_classes=2, window=1)
    x = torch.rand(5, 12)
    assert torch.equal(default.eval()(x), explicit.eval()(x))
    assert [n for n, _ in default.named_parameters()] == [n for n, _ in explicit.named_parameters()]


def test_attacks_on_windows_leave_presence_and_padding_alone():
    pre = Preprocessor(
        dataset="iot23",
        task="binary",
        class_names=["benign", "malicious"],
        numeric_names=["a", "b"],
        categorical_names=["c"],
        categories={"c": ["x"]},
        encoding="label",
        scaler="minmax",
        clip=True,
        numeric_min=[0.0, 0.0],
        numeric_max=[1.0, 1.0],
        numeric_integer=[False, False],
        window=3,
    )
    assert pre.input_shape == (3, 4)
    constraints = Constraints.from_preprocessor(pre)
    assert constraints.mutable.tolist() == [True, True, False, False]
    torch.manual_seed(0)
    net = LSTM(num_features=3, num_classes=2, window=3)
    x = torch.rand(8, 3, 4)
    x[:, 0] = 0  # padding
    x[:, 1:, -1] = 1
    y = torch.randint(0, 2, (8,))
    loss = torch.nn.BCEWithLogitsLoss()
    adversarial = fgsm(net, lambda logits, t: loss(logits.squeeze(-1), t.float()), x, y, 0.1, constraints)
    assert torch.equal(adversarial[:, 0], x[:, 0])  # padding untouched
    assert torch.equal(adversarial[..., 2:], x[..., 2:])  # categorical and presence untouched
    assert (adversarial[:, 1:, :2] - x[:, 1:, :2]).abs().max() > 0  # flows attacked


def test_the_windows_evaluation_summarises_seeds_and_held_out_families():
    from ids_lightning.bench.windows import run_scores, summarise

    scores = run_scores({"test/f1/malicious": 0.5, "test/recall/malicious": 0.4, "test/recall/benign": 0.99}, "iot23")
    assert scores["f1"] == 0.5 and scores["false_alarm_rate"] == pytest.approx(0.01)
    assert run_scores({"test/recall/benign": 1.0}, "iot23")["f1"] is None  # no malicious test flow: undefined
    rows = [
        {"fold": fold, "model": "cnn_lstm", "window": 8, "context": False, "seed": seed, "f1": f1, "recall": f1}
        | {"false_alarm_rate": 0.0, "val_f1_macro": 0.9}
        for fold, seed, f1 in [("iot23:a", 1, 0.2), ("iot23:a", 2, 0.4), ("iot23:b", 1, 1.0), ("iot23:b", 2, 1.0)]
    ]
    rows.append({"fold": "iot23:b", "model": "cnn_lstm", "window": 8, "context": False, "seed": 3, "error": "x"})
    table = summarise(rows)
    by_fold = {e["fold"]: e for e in table}
    assert by_fold["iot23:a"]["f1_mean"] == pytest.approx(0.3) and by_fold["iot23:a"]["f1_std"] == pytest.approx(
        0.02**0.5
    )
    assert by_fold["iot23:b"]["seeds"] == 2  # the failed run is not averaged in
    assert by_fold["iot23: mean of 2 held-out families"]["f1_mean"] == pytest.approx(0.65)


def test_a_class_never_predicted_scores_f1_zero_in_the_windows_evaluation():
    from ids_lightning.bench.windows import run_scores

    scores = run_scores({"test/recall/malicious": 0.0, "test/recall/benign": 1.0}, "iot23")
    assert scores["f1"] == 0.0 and scores["recall"] == 0.0 and scores["false_alarm_rate"] == 0.0
