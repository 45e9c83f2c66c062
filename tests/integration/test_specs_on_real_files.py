"""Every shared data file is recognised as its dataset, and its ids stay metadata."""

from __future__ import annotations

import pytest

from ids_lightning.datasets import SPECS, get_spec, sniff_dataset
from tests.helpers import DATA_DIR

REAL_FILES = {  # plain or gzipped
    "nsl_kdd": sorted((DATA_DIR / "nsl_kdd").glob("*.txt*")),
    "iot23": sorted((DATA_DIR / "iot23").rglob("*.labeled*")),
    "bot_iot": sorted((DATA_DIR / "bot_iot").glob("*.csv*")),
}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_every_shared_file_is_recognised_as_its_dataset(data_dir, name):
    assert REAL_FILES[name], f"no shared {name} files under {DATA_DIR}"
    for path in REAL_FILES[name]:
        assert sniff_dataset(path)[0] is SPECS[name], path


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_ids_are_metadata_and_never_features(data_dir, name):
    spec = get_spec(name)
    table = next(spec.iter_tables(REAL_FILES[name][0], chunk_rows=500))
    features = set(table.numeric_names + table.categorical_names)
    assert not features & set(spec.never_features)
    assert set(spec.id_columns) <= set(table.meta)
    assert spec.task_labels(table, next(iter(spec.tasks))).shape == (len(table),)
    assert spec.host_column is None or spec.host_column in spec.id_columns
