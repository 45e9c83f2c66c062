"""Federated training on Flower's simulation engine, on a slice of the real NSL-KDD (two tiny
rounds, about 20 s: the slow tier; the real runs are in the other e2e tests and ``make
bench-federated``)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import federated_run as _run


def test_two_round_simulation_writes_a_complete_run(tmp_path, nsl_kdd_slice):
    summary = _run(tmp_path, nsl_kdd_slice, "federated.clients=3", "federated.rounds=2", "federated.local_epochs=3")
    record = json.loads((tmp_path / "federated.json").read_text())
    assert [r["round"] for r in record["rounds"]] == [0, 1, 2]
    last = record["rounds"][-1]
    assert sorted(last["sites"], key=int) == ["0", "1", "2"]
    assert all("val_f1_macro" in s and "train_loss" in s for s in last["sites"].values())
    # weights go out for training and evaluation to 3 sites, and come back from training
    weights = sum(p.numel() * 4 for p in torch_net(tmp_path).values())
    assert 6 * weights < last["sent_bytes"] < 6 * weights + 200_000  # + the preprocessing JSON
    assert 3 * weights <= last["received_bytes"] < 3 * weights + 10_000
    assert summary["federated/best_round"] == record["best_round"] in (1, 2)
    assert summary["val/f1_macro_best"] == max(r["val_f1_macro"] for r in record["rounds"][1:])
    test_rows = json.loads((tmp_path / "evaluation.json").read_text())["confusion_matrix"]
    majority = max(map(sum, test_rows)) / sum(map(sum, test_rows))
    assert summary["test/acc"] > majority + 0.1, (summary["test/acc"], majority)  # learnt, beyond the largest class
    for name in ("metrics.json", "federated.png", "model.onnx", "preprocess.json", "confusion_matrix.png"):
        assert (tmp_path / name).is_file(), name
    assert summary["onnx/max_abs_diff"] < 1e-4
    assert summary["federated/sent_bytes"] == sum(r["sent_bytes"] for r in record["rounds"])
    assert all(
        r["update_norm"] > 0.05 for r in record["rounds"][1:]
    )  # unclipped (the clipped case: tests/e2e/test_federated_defences.py)


def torch_net(run_dir: Path) -> dict:
    import torch

    return torch.load(run_dir / "checkpoints" / "global_best.pt", weights_only=True)
