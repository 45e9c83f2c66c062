"""A malicious federated site against FedAvg and the coordinate-wise median (five sites, slices of NSL-KDD)."""

from __future__ import annotations

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
