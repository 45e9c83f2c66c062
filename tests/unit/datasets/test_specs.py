"""The dataset specs on the real shared files: each file is recognised as its dataset, ids are
kept as metadata and never become features, and the registry refuses what it should."""

from __future__ import annotations

import pytest

from ids_lightning.core.errors import DataError
from ids_lightning.datasets import SPECS, get_spec, register, sniff_dataset


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


def test_a_missing_or_non_regular_input_is_one_reason_not_one_per_dataset(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.csv: no such flow file$"):
        sniff_dataset(tmp_path / "nowhere.csv")
    with pytest.raises(DataError, match="not a regular file"):
        sniff_dataset(tmp_path)
