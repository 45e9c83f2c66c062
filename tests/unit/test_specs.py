"""The dataset specs on the real shared files: each file is recognised as its dataset, ids are
kept as metadata and never become features, and the registry refuses what it should."""

from __future__ import annotations

import pytest

from ids_lightning.core.errors import DataError
from ids_lightning.datasets import SPECS, get_spec, register, sniff_dataset
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


def test_a_file_of_no_known_dataset_names_every_reason(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello,world\n")
    with pytest.raises(DataError) as info:
        sniff_dataset(path)
    assert all(spec.title in str(info.value) for spec in SPECS.values())


def test_the_registry_refuses_unknown_and_taken_names():
    with pytest.raises(ValueError, match="unknown dataset 'cic_ids2017'"):
        get_spec("cic_ids2017")
    impostor = type(SPECS["iot23"])()
    with pytest.raises(ValueError, match="already registered"):
        register(impostor)
    assert register(SPECS["iot23"]) is SPECS["iot23"]


def test_tasks_and_splits_are_checked_with_one_wording():
    spec = get_spec("iot23")
    with pytest.raises(ValueError, match=r"dataset.task of IoT-23 must be one of \['binary', 'detailed'\]"):
        spec.check("family", "random")
    with pytest.raises(ValueError, match=r"dataset.split of IoT-23 must be one of \['random', 'by_capture'\]"):
        spec.check("binary", "official")
