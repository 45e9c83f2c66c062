"""Attack types training never saw are scored apart from the seen ones (KDDTest+'s new attack
names, an unseen IoT-23 family), for deep runs and baselines alike."""

from __future__ import annotations

import numpy as np
import pytest

from ids_lightning.datasets import get_spec
from ids_lightning.evaluation.unseen import unseen_scores_of
from tests.helpers import NSL_KDD_TEST, NSL_KDD_TRAIN, datamodule


def test_kddtest_attacks_of_names_kddtrain_lacks_are_counted_apart():
    dm = datamodule("nsl_kdd")
    spec = get_spec("nsl_kdd")
    train_names = set(spec.read_file(NSL_KDD_TRAIN).labels.tolist())
    test_names = spec.read_file(NSL_KDD_TEST).labels
    novel = ~np.isin(test_names, sorted(train_names))
    known_attacks = np.isin(test_names, sorted(train_names)) & (test_names != "normal")
    y = dm.tensors["test"][1].numpy()
    perfect = unseen_scores_of(dm, y)
    assert perfect["test/novel_types/records"] == novel.sum() > 3000  # 17 names, 3,750 records
    assert perfect["test/known_types/records"] == known_attacks.sum()
    assert len(perfect["novel_types"]) == len(set(test_names[novel].tolist())) == 17
    assert perfect["test/novel_types/detected"] == perfect["test/novel_types/recall"] == 1.0
    normal = dm.class_names.index("normal")
    blind = unseen_scores_of(dm, np.full(len(y), normal))
    assert blind["test/novel_types/detected"] == blind["test/known_types/detected"] == 0.0
    assert perfect["test/binary_acc"] == 1.0 and blind["test/binary_acc"] == pytest.approx((y == normal).mean())
    # another attack class than its own: detected, not recalled
    wrong = unseen_scores_of(dm, np.where(y == normal, normal, (y % (len(dm.class_names) - 1)) + 1))
    assert wrong["test/novel_types/detected"] == 1.0 and wrong["test/novel_types/recall"] < 1.0
    assert wrong["test/binary_acc"] == 1.0  # the wrong attack class is still an attack


def test_an_unseen_iot23_family_is_novel_and_the_seen_ones_are_not():
    dm = datamodule("iot23")  # by_capture: the Torii captures are the test
    scores = unseen_scores_of(dm, dm.tensors["test"][1].numpy())
    assert scores["novel_types"] == {"C&C-Torii": 30}
    assert scores["test/known_types/records"] == 0


def test_by_family_validation_on_kddtrain_holds_attack_types_training_never_sees():
    dm = datamodule("nsl_kdd", setup=False, val_split="by_family")
    tables, _ = dm.load_splits()
    train_types = set(tables["train"].meta["attack_type"].tolist())
    val_attacks = tables["val"].meta["attack_type"][tables["val"].labels != "normal"]
    assert len(val_attacks) > 1000 and not set(val_attacks.tolist()) & train_types
    # every family still trains on its largest attack type
    for family in ("DoS", "Probe", "R2L", "U2R"):
        assert (tables["train"].labels == family).sum() > 0
    dm.setup()
    assert dm.facts()["val_split"] == "by_family"
