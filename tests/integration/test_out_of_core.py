"""Out-of-core training on the shared IoT-23 captures prepared as Parquet in small chunks: the
streaming scan fits what the in-memory path fits, random splits do not depend on the chunking,
windows carry across chunk boundaries, and a run trains and tests from the stream."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ids_lightning.core.errors import ConfigError
from ids_lightning.data.prepare import prepare
from ids_lightning.training.run import train
from tests.helpers import QUIET, datamodule

CAPTURES = ["iot23/*.conn.log.labeled*", "iot23/csv_exports/*.labeled.csv*"]
VAL_CAPTURE = ["CTU-IoT-Malware-Capture-42-1"]
BY_CAPTURE = {"files": ["iot23/*.parquet"], "val_split": "by_capture", "val_partitions": VAL_CAPTURE}


def _prepared(root, data_dir, chunk_rows: int):
    inputs = sorted(p for pattern in CAPTURES for p in data_dir.glob(pattern))
    prepare(inputs, root / "iot23", dataset="iot23", chunk_rows=chunk_rows)
    return root


@pytest.fixture(scope="module")
def chunked(tmp_path_factory, data_dir):
    """The captures in row groups of 4,000 rows (the largest capture spans six)."""
    return _prepared(tmp_path_factory.mktemp("chunks_4000"), data_dir, 4_000)


def _streamed_rows(dm) -> tuple[np.ndarray, np.ndarray]:
    """Every training sample the stream reads, in file order."""
    chunks, read = dm.stream
    parts = [read(chunk) for chunk in chunks if chunk.rows]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def _in_memory_rows(dm) -> tuple[np.ndarray, np.ndarray]:
    x, y = dm.tensors["train"]
    return x[torch.arange(len(y))].numpy(), y.numpy()


def _pair(root, **settings):
    both = [datamodule("iot23", data_dir=root, in_memory=mode, **settings) for mode in ("true", "false")]
    assert both[0].stream is None and both[1].stream is not None
    return both


@pytest.mark.parametrize("scaler", ["minmax", "log_minmax", "quantile"])
def test_the_streaming_fit_is_the_in_memory_fit(chunked, scaler):
    memory, streamed = _pair(chunked, scaler=scaler, **BY_CAPTURE)
    assert streamed.preprocessor.to_dict() == memory.preprocessor.to_dict()
    for stage in ("val", "test"):
        assert all(torch.equal(a, b) for a, b in zip(memory.tensors[stage], streamed.tensors[stage])), stage
    x, y = _streamed_rows(streamed)
    expected_x, expected_y = _in_memory_rows(memory)
    assert np.array_equal(x, expected_x) and np.array_equal(y, expected_y)
    for key in ("class_counts", "class_counts_before_balance", "rows_skipped"):
        assert streamed.stats[key] == memory.stats[key], key
    assert streamed.stats["in_memory"] is False and memory.stats["in_memory"] is True


def test_windows_and_their_context_cross_chunk_boundaries(chunked):
    memory, streamed = _pair(chunked, window=8, context=True, **BY_CAPTURE)
    assert any(chunk.carry is not None and len(chunk.carry) for chunk in streamed.stream[0])
    assert streamed.preprocessor.to_dict() == memory.preprocessor.to_dict()
    x, y = _streamed_rows(streamed)
    expected_x, expected_y = _in_memory_rows(memory)
    assert x.shape[1:] == (8, streamed.num_features + 1)
    assert np.array_equal(x, expected_x) and np.array_equal(y, expected_y)


def test_random_splits_do_not_depend_on_the_chunking(chunked, tmp_path, data_dir):
    other = _prepared(tmp_path, data_dir, 9_000)
    settings = {"files": ["iot23/*.parquet"], "split": "random", "in_memory": "false", "seed": 3}
    a, b = (datamodule("iot23", data_dir=root, **settings) for root in (chunked, other))
    assert [c.rows for c in a.stream[0]] != [c.rows for c in b.stream[0]]
    for stage in ("val", "test"):
        assert all(torch.equal(p, q) for p, q in zip(a.tensors[stage], b.tensors[stage])), stage
    assert all(np.array_equal(p, q) for p, q in zip(_streamed_rows(a), _streamed_rows(b)))
    total = sum(c.rows for c in a.stream[0]) + len(a.tensors["val"][1]) + len(a.tensors["test"][1])
    assert len(a.tensors["test"][1]) / total == pytest.approx(0.15, abs=0.01)
    assert len(a.tensors["val"][1]) / total == pytest.approx(0.15, abs=0.01)
    reseeded = datamodule("iot23", data_dir=chunked, **{**settings, "seed": 4})
    assert not torch.equal(reseeded.tensors["test"][1], a.tensors["test"][1])


def test_where_rows_live_is_chosen_and_checked(chunked, data_dir):
    assert datamodule("iot23", data_dir=chunked, files=["iot23/*.parquet"]).stream is None  # auto: they fit
    with pytest.raises(ConfigError, match="prepare them"):
        datamodule("iot23", data_dir=data_dir, in_memory="false")
    with pytest.raises(ConfigError, match="in_memory"):
        datamodule("iot23", data_dir=chunked, files=["iot23/*.parquet"], in_memory="sometimes")
    with pytest.raises(ConfigError, match="by_family"):
        datamodule("iot23", data_dir=chunked, files=["iot23/*.parquet"], in_memory="false", val_split="by_family")
    with pytest.raises(ConfigError, match="balance=smote"):
        datamodule("iot23", data_dir=chunked, files=["iot23/*.parquet"], in_memory="false", balance="smote")


def test_a_run_trains_and_tests_out_of_core(chunked, make_config, tmp_path):
    cfg = make_config(
        "dataset=iot23",
        "model=cnn",
        "dataset.files=[iot23/*.parquet]",
        "dataset.in_memory=false",
        "dataset.shuffle_buffer=2048",
        "dataset.batch_size=256",
        "trainer.max_epochs=2",
        *QUIET,
        "export=none",
    )
    cfg.paths.data_dir = str(chunked)
    metrics = train(cfg)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["in_memory"] is False and written["train_chunks"] >= 6
    assert sum(written["class_counts"]["train"].values()) > 20_000
    # a model that learned from the stream (chance: macro-F1 about 0.45, AUC 0.5); the test
    # captures are a malware family training never saw
    assert metrics["val/f1_macro_best"] > 0.9 and metrics["test/auroc"] > 0.9


def test_class_weights_come_from_the_scans_counts(chunked):
    memory, streamed = _pair(chunked, balance="class_weight", **BY_CAPTURE)
    assert streamed.class_weights == pytest.approx(memory.class_weights)
    assert streamed.class_weights[1] < 1 < streamed.class_weights[0]  # benign is the minority in training


def test_the_training_sample_draws_rows_from_the_stream(chunked):
    streamed = datamodule("iot23", data_dir=chunked, in_memory="false", **BY_CAPTURE)
    x, y = streamed.train_sample(1_000)  # fewer rows than a chunk holds
    assert x.shape == (1_000, streamed.num_features) and y.shape == (1_000,)
    all_x, _ = _streamed_rows(streamed)
    known = {tuple(row) for row in all_x.tolist()}
    assert all(tuple(row) in known for row in x.numpy().tolist())  # real training samples
    assert len(streamed.tensors["train"][1]) == sum(c.rows for c in streamed.stream[0])  # all fit in the sample
