"""The benign density: groups found, far rows flagged at the calibrated rate, JSON that round-trips
and refuses what it cannot read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ids_lightning.core.density import BenignDensity, kmeans
from ids_lightning.core.errors import PreprocessStateError


def benign_rows(n: int, seed: int) -> np.ndarray:
    """Two tight groups of benign traffic, far apart."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.1, 0.1, 0.9], [0.9, 0.8, 0.1]])
    return centres[rng.integers(0, 2, n)] + rng.normal(0, 0.02, (n, 3))


def test_kmeans_finds_separate_groups():
    rows = benign_rows(400, 0)
    groups = kmeans(rows, 2)
    first = rows[:, 0] < 0.5
    assert len(set(groups[first])) == 1 and len(set(groups[~first])) == 1 and groups[first][0] != groups[~first][0]
    assert len(set(kmeans(rows[:3], 16))) <= 3  # never more groups than distinct rows


def test_rows_between_the_groups_are_unlike_benign_at_the_calibrated_rate():
    density = BenignDensity.fit(benign_rows(2000, 1), benign_rows(2000, 2), fpr=0.01, clusters=4)
    assert density.flags(benign_rows(5000, 3)).mean() == pytest.approx(0.01, abs=0.006)
    between = np.array([[0.5, 0.45, 0.5], [0.1, 0.8, 0.9]])  # each benign coordinate, never together
    assert density.flags(between).all()
    # one Gaussian over both groups would call the middle typical: the groups are what find it
    single = BenignDensity.fit(benign_rows(2000, 1), benign_rows(2000, 2), fpr=0.01, clusters=1)
    assert not single.flags(between[:1]).any()


def test_the_density_round_trips_as_json_and_refuses_what_it_cannot_read(tmp_path):
    density = BenignDensity.fit(benign_rows(500, 1), benign_rows(500, 2), fpr=0.05, clusters=2)
    path = tmp_path / "density.json"
    density.save(path)
    loaded = BenignDensity.load(path, 3)
    rows = benign_rows(50, 4)
    assert np.array_equal(loaded.scores(rows), density.scores(rows)) and loaded.threshold == density.threshold
    with pytest.raises(PreprocessStateError, match="of 4 finite inputs"):
        BenignDensity.load(path, 4)
    state = json.loads(path.read_text())
    path.write_text(json.dumps(state | {"format": 99}))
    with pytest.raises(PreprocessStateError, match="newer"):
        BenignDensity.load(path, 3)
    path.write_text(json.dumps({k: v for k, v in state.items() if k != "precision"}))
    with pytest.raises(PreprocessStateError, match="not a benign density"):
        BenignDensity.load(path, 3)
