"""The shortcut check: a feature that holds most of one capture's attributions and little of
every other's is flagged; one that dominates everywhere is not."""

from __future__ import annotations

import numpy as np

from ids_lightning.training.callbacks.explanations import Explanations


def test_a_feature_dominating_one_capture_only_is_a_possible_shortcut(tmp_path):
    check = Explanations(str(tmp_path))
    names = ["port", "bytes", "history"]
    shares = {
        "capture-a": np.array([0.8, 0.1, 0.1]),  # the port carries capture a alone
        "capture-b": np.array([0.05, 0.55, 0.4]),
        "capture-c": np.array([0.02, 0.6, 0.38]),
    }
    found = check._shortcuts(shares, names)
    assert found == [{"feature": "port", "capture": "capture-a", "share": 0.8, "share_elsewhere": 0.05}]
    everywhere = {name: np.array([0.1, 0.7, 0.2]) for name in ("capture-a", "capture-b")}
    assert check._shortcuts(everywhere, names) == []
    assert check._shortcuts({"capture-a": shares["capture-a"]}, names) == []  # one capture: nothing to compare
