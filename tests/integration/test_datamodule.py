"""The DataModule on the real NSL-KDD files: splits, tasks, train-only fitting, files and downloads."""

from __future__ import annotations

import gzip
import hashlib

import hydra
import numpy as np
import pytest

from ids_lightning.core.errors import DataError, MissingDataError
from ids_lightning.core.fileio import download
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.splits import stratified_split
from ids_lightning.datasets import nsl_kdd
from tests.helpers import GOOD, NSL_KDD_TRAIN
from tests.helpers import datamodule as make_datamodule


def datamodule(data_dir, **kwargs):
    return make_datamodule("nsl_kdd", data_dir, **kwargs)


def sizes(dm):
    return {stage: len(dm.tensors[stage][1]) for stage in ("train", "val", "test")}


def test_official_split_tests_on_kddtest_plus(data_dir):
    dm = datamodule(data_dir)
    n = sizes(dm)
    assert n["train"] + n["val"] == 125973 and n["test"] == 22544
    assert abs(n["val"] / 125973 - 0.15) < 0.001
    assert dm.class_names == ["normal", "DoS", "Probe", "R2L", "U2R"]
    # stratified: every family keeps its share in validation
    train_share = np.bincount(dm.tensors["train"][1].numpy()) / n["train"]
    val_share = np.bincount(dm.tensors["val"][1].numpy()) / n["val"]
    assert np.allclose(train_share, val_share, atol=0.002)


def test_random_split_is_the_seed_papers_70_15_15(data_dir):
    n = sizes(datamodule(data_dir, split="random"))
    assert sum(n.values()) == 125973
    assert [round(n[s] / 125973, 2) for s in ("train", "val", "test")] == [0.7, 0.15, 0.15]


def test_stratified_split_is_disjoint_seeded_and_keeps_rare_classes_in_train():
    labels = np.array(["a"] * 100 + ["b"] * 20 + ["rare"])
    parts = stratified_split(labels, [0.7, 0.15, 0.15], seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(121))
    assert 120 in parts[0]
    again = stratified_split(labels, [0.7, 0.15, 0.15], seed=1)
    other = stratified_split(labels, [0.7, 0.15, 0.15], seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not np.array_equal(parts[1], other[1])


@pytest.mark.parametrize(
    ("task", "num_classes", "dropped_test"),
    [("family", 5, 0), ("binary", 2, 0), ("attack", 23, 3750)],
)
def test_task_sets_classes(data_dir, task, num_classes, dropped_test):
    dm = datamodule(data_dir, task=task)
    assert dm.num_classes == num_classes
    assert dm.stats["rows_dropped_unseen_class"]["test"] == dropped_test
    assert sizes(dm)["test"] == 22544 - dropped_test


def test_encoders_see_training_rows_only(data_dir):
    dm = datamodule(data_dir, split="random", seed=7)
    raw = nsl_kdd.read_file(NSL_KDD_TRAIN)
    train_idx, _, _ = stratified_split(nsl_kdd.SPEC.task_labels(raw, "family").astype(str), [0.7, 0.15, 0.15], seed=7)
    assert dm.preprocessor.numeric_max == raw.numeric[train_idx].max(axis=0).tolist()
    # the check has teeth: on all rows some maxima differ
    assert dm.preprocessor.numeric_max != raw.numeric.max(axis=0).tolist()
    train_x = dm.tensors["train"][0]
    assert float(train_x.min()) == 0.0 and float(train_x.max()) == 1.0


def test_categorical_and_scaler_overrides_change_features(make_config):
    label_cfg = make_config("dataset.categorical=label", "dataset.scaler=minmax")
    label_dm = hydra.utils.instantiate(label_cfg.dataset)
    label_dm.setup()
    onehot_cfg = make_config("dataset.categorical=onehot", "dataset.scaler=log_minmax")
    onehot_dm = hydra.utils.instantiate(onehot_cfg.dataset)
    onehot_dm.setup()
    assert label_dm.num_features == 41
    assert onehot_dm.num_features == 38 + sum(len(v) + 1 for v in onehot_dm.preprocessor.categories.values())
    assert onehot_dm.preprocessor.scaler == "log_minmax"
    column = nsl_kdd.NUMERIC.index("src_bytes")
    # log1p spreads the heavy-tailed byte counts: the median row moves far from 0
    assert np.median(label_dm.tensors["train"][0][:, column].numpy()) < 1e-4
    assert np.median(onehot_dm.tensors["train"][0][:, column].numpy()) > 0.1


def test_preprocess_json_is_written_and_loads(data_dir, tmp_path):
    dm = datamodule(data_dir, categorical="onehot", output_dir=str(tmp_path))
    loaded = Preprocessor.load(tmp_path / "preprocess.json")
    assert loaded.num_features == dm.num_features
    assert loaded.class_names == dm.class_names
    assert sum(loaded.categorical_mask) == dm.num_features - 38


def test_missing_files_give_one_clear_error(tmp_path):
    dm = datamodule(tmp_path, download=False, setup=False)
    with pytest.raises(MissingDataError) as info:
        dm.setup()
    message = str(info.value)
    assert str(tmp_path / "nsl_kdd" / "KDDTrain+.txt") in message
    assert (
        "nsl_kdd/KDDTrain+.txt, nsl_kdd/KDDTest+.txt" in message and "unb.ca" in message and "IDS_DATA_DIR" in message
    )


def test_download_keeps_only_files_with_the_right_hash(tmp_path):
    source = tmp_path / "mirror.txt"
    source.write_text(GOOD + "\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "data" / "KDDTest+.txt"
    with pytest.raises(DataError, match="does not match"):
        download([source.as_uri()], dest, "0" * 64)
    assert not (tmp_path / "data").exists()  # the folder this call made is gone again
    download([(tmp_path / "absent").as_uri(), source.as_uri()], dest, digest)
    assert dest.read_bytes() == source.read_bytes()


def test_bad_rows_skip_is_counted_in_stats(tmp_path):
    folder = tmp_path / "nsl_kdd"
    folder.mkdir()
    rows = [GOOD.replace("normal", name) for name in ["normal", "neptune"] * 20]
    rows[5] = GOOD.replace("SF,215", "SF,oops")
    (folder / "KDDTrain+.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"KDDTrain\+\.txt:6: .*'oops' is not a number"):
        datamodule(tmp_path, split="random", task="binary")
    dm = datamodule(tmp_path, split="random", task="binary", bad_rows="skip")
    assert dm.stats["rows_skipped"] == 1
    assert sum(sizes(dm).values()) == 39
    assert "KDDTrain+.txt:6:" in dm.stats["rows_skipped_examples"][0]


def test_download_fetches_a_missing_file_checks_it_and_reads_it(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror" / "KDDTrain+.txt"
    mirror.parent.mkdir()
    mirror.write_text("\n".join(GOOD.replace("normal", n) for n in ["normal", "neptune"] * 20) + "\n")
    source = nsl_kdd.Download(hashlib.sha256(mirror.read_bytes()).hexdigest(), (mirror.as_uri(),))
    monkeypatch.setitem(nsl_kdd.NSLKDD.downloads, "nsl_kdd/KDDTrain+.txt", source)
    dm = datamodule(tmp_path / "data", split="random", task="binary")
    assert (tmp_path / "data" / "nsl_kdd" / "KDDTrain+.txt").read_bytes() == mirror.read_bytes()
    assert sum(sizes(dm).values()) == 40


def test_a_plain_file_is_preferred_to_its_gzipped_copy(tmp_path, data_dir):
    folder = tmp_path / "nsl_kdd"
    folder.mkdir()
    (folder / "KDDTrain+.txt").write_text("\n".join(GOOD.replace("normal", n) for n in ["normal", "smurf"] * 10) + "\n")
    (folder / "KDDTrain+.txt.gz").write_bytes(gzip.compress(b"never read: the plain file wins\n"))
    assert sum(sizes(datamodule(tmp_path, split="random", task="binary")).values()) == 20


def test_without_network_nothing_is_tried_and_nothing_is_left(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("socket.getaddrinfo", offline)
    dm = datamodule(tmp_path / "data", setup=False)  # download=true, as nsl_kdd.yaml has it
    with pytest.raises(MissingDataError, match="IDS_DATA_DIR") as info:
        dm.setup()
    assert "nsl_kdd/KDDTrain+.txt" in str(info.value)
    assert not (tmp_path / "data").exists()


def test_a_run_that_fails_before_training_leaves_no_folder(make_config, tmp_path):
    from ids_lightning.training.run import train

    folder = tmp_path / "run"
    cfg = make_config("dataset.task=familly")
    cfg.paths.output_dir = str(folder)
    with pytest.raises(ValueError, match="familly"):
        train(cfg)
    assert not folder.exists()
    (folder / ".hydra").mkdir(parents=True)  # as Hydra leaves it before the run starts
    cfg = make_config("trainer.max_epochs=0")
    cfg.paths.output_dir = str(folder)
    with pytest.raises(ValueError, match="max_epochs must be at least 1"):
        train(cfg)
    assert not folder.exists()


def test_a_training_split_of_one_class_is_refused(tmp_path, nsl_kdd_slice):
    """Only benign rows (an all-honeypot capture, a wrong file): nothing to tell apart."""
    (tmp_path / "nsl_kdd").mkdir()
    rows = (nsl_kdd_slice / "nsl_kdd" / "KDDTrain+.txt").read_text().splitlines(keepends=True)
    (tmp_path / "nsl_kdd" / "KDDTrain+.txt").write_text("".join(r for r in rows if ",normal," in r))
    dm = make_datamodule("nsl_kdd", tmp_path, setup=False, split="random", download=False)
    with pytest.raises(DataError, match="1 class \\(normal\\)"):
        dm.setup()


def test_a_refit_trains_on_the_validation_rows_too(data_dir):
    """The refit of a configuration chosen on validation learns the validation rows as well;
    validation and test rows stay what they were (BoT-IoT: the small sample)."""
    chosen = make_datamodule("bot_iot", data_dir)
    refit = make_datamodule("bot_iot", data_dir, refit=True)
    assert sizes(refit)["train"] == sizes(chosen)["train"] + sizes(chosen)["val"]
    assert sizes(refit)["val"] == sizes(chosen)["val"] and sizes(refit)["test"] == sizes(chosen)["test"]
    assert refit.facts()["refit"] and not chosen.facts()["refit"]
