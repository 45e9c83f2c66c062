"""Federated defences on slices of NSL-KDD: the coordinate-wise median against a malicious site, and
client-side clipping (differential privacy) bounding each round's update."""

from __future__ import annotations

import json

from tests.helpers import federated_run as _run


def test_median_resists_one_site_that_scales_its_update(tmp_path, nsl_kdd_slice):
    """Five sites, the first sends its update times 50: FedAvg's global model breaks, the
    coordinate-wise median's does not."""
    attacked = [
        "federated.clients=5",
        "federated.rounds=1",
        "federated.local_epochs=5",
        "federated.malicious=1",
        "federated.attack_scale=50",
        "dataset.task=binary",
    ]
    scores = {}
    for strategy in ("fedavg", "fedmedian"):
        run = _run(tmp_path / strategy, nsl_kdd_slice, *attacked, f"federated.strategy={strategy}")
        scores[strategy] = run["val/f1_macro_best"]
    assert scores["fedmedian"] > scores["fedavg"] + 0.1, scores


def test_differential_privacy_clips_each_sites_update(tmp_path, nsl_kdd_slice):
    """Flower's client-side fixed clipping (no noise here, so the bound is exact): the global
    model moves at most the clipping norm in a round, and metrics.json says what was applied."""
    summary = _run(tmp_path, nsl_kdd_slice, "federated.clients=3", "federated.rounds=1", "federated.local_epochs=2",
                   "federated.dp_clipping_norm=0.05", "federated.dp_noise_multiplier=0")  # fmt: skip
    (round_one,) = json.loads((tmp_path / "federated.json").read_text())["rounds"][1:]
    assert 0 < round_one["update_norm"] <= 0.05 + 1e-6
    assert summary["federated/dp_clipping_norm"] == 0.05 and summary["federated/dp_noise_std"] == 0.0
