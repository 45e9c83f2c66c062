"""How the test attacks of types training never saw fare against the types it saw.

KDDTest+ holds 17 attack names that KDDTrain+ lacks; a held-out IoT-23 capture brings a family
training never saw. The datamodule records each test sample's attack type and the types
training saw (:class:`TestTypes`); runs, baselines and ensembles score their predictions
against it with :func:`unseen_type_scores`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ids_lightning.core.spec import DatasetSpec


@dataclass(frozen=True)
class TestTypes:
    """Each test sample's attack type, in test order, and the types training saw."""

    types: np.ndarray
    seen: frozenset[str]

    def attacks(self, spec: DatasetSpec, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first ``rows`` samples' types, whether each is an attack, and whether an attack
        of a type training never saw."""
        types = self.types[:rows]
        attack = ~np.array([spec.is_benign(t) for t in types], dtype=bool)
        return types, attack, attack & ~np.isin(types, sorted(self.seen))


def unseen_type_scores(
    spec: DatasetSpec, class_names: list[str], test_types: TestTypes | None, y: np.ndarray, predicted: np.ndarray
) -> dict:
    """Given the predicted class of the first ``len(predicted)`` test samples (labels ``y``):
    for the attacks of types training never saw (``novel``) and those it saw (``known``),
    ``detected`` = called any attack class, ``recall`` = called its own class, and the record
    counts. With a benign class, also ``binary_acc``: benign vs attack when every attack class
    counts as "attack" (the binary figure of a multi-class model). Empty where the dataset's
    layout has no attack types and no benign class."""
    y = y[: len(predicted)]
    benign = [i for i, name in enumerate(class_names) if spec.is_benign(name)]
    scores: dict = {}
    if benign and len(predicted):
        scores["test/binary_acc"] = float((np.isin(predicted, benign) == np.isin(y, benign)).mean())
    if test_types is None:
        return scores
    types, attack, novel = test_types.attacks(spec, len(predicted))
    detected = ~np.isin(predicted, benign)
    for group, mask in (("novel", novel), ("known", attack & ~novel)):
        scores[f"test/{group}_types/records"] = int(mask.sum())
        if mask.any():
            scores[f"test/{group}_types/detected"] = float(detected[mask].mean())
            scores[f"test/{group}_types/recall"] = float((predicted[mask] == y[mask]).mean())
    scores["novel_types"] = dict(Counter(types[novel].tolist()).most_common())
    return scores


def novel_type_rows(spec: DatasetSpec, test_types: TestTypes | None, rows: int) -> np.ndarray | None:
    """Per test sample (the first ``rows``): an attack of a type training never saw. None where
    the dataset's layout has no attack types."""
    return None if test_types is None else test_types.attacks(spec, rows)[2]


def unseen_scores_of(datamodule, predicted: np.ndarray) -> dict:
    """:func:`unseen_type_scores` of a datamodule's test split (its spec, classes, test types
    and labels), given the predicted class of its first ``len(predicted)`` test samples."""
    y = datamodule.tensors["test"][1].cpu().numpy()
    return unseen_type_scores(datamodule.spec, datamodule.class_names, datamodule.test_types, y, predicted)
