"""The detector's output appears whole or not at all: a run that fails part-way leaves an earlier
output as it was, and a cut input still ends with what came before the cut."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from ids_lightning.core.errors import DataError
from ids_lightning.edge.detector import detect
from tests.helpers import GOOD, PROJECT_ROOT
from tools.chaos.detector import nan_model

EXAMPLE = PROJECT_ROOT / "examples" / "nsl_kdd_cnn_lstm"


def test_a_failure_part_way_leaves_the_earlier_output(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    flows = tmp_path / "flows.txt"
    flows.write_text((GOOD + "\n") * 50)
    output = tmp_path / "alerts.jsonl"
    assert detect(run, flows, output, progress=False)["records"] == 50
    earlier = output.read_text()
    nan_model(run)  # scores every record NaN: refused at the first chunk
    with pytest.raises(DataError, match="non-finite probabilities"):
        detect(run, flows, output, progress=False)
    assert output.read_text() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "alerts.jsonl",
        "alerts.jsonl.summary.json",
        "flows.txt",
        "run",
    ]


def test_a_pipe_is_read_once_losing_nothing(tmp_path):
    """Sniffing the format used to read a buffer and open the pipe again: the first 8 KB and
    every line number after them were lost."""
    import json
    import os
    import threading

    fifo = tmp_path / "flows.txt"
    os.mkfifo(fifo)
    text = (GOOD + "\n") * 3000  # about 300 KB

    def feed():
        with open(fifo, "w") as writer:
            writer.write(text)

    threading.Thread(target=feed, daemon=True).start()
    output = tmp_path / "alerts.jsonl"
    summary = detect(EXAMPLE, fifo, output, progress=False, all_flows=True)
    assert summary["records"] == 3000 and summary["input"] == str(fifo)
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["input"]["line"] for r in records] == list(range(1, 3001))


def test_standard_input_is_a_source(tmp_path):
    import subprocess
    import sys

    output = tmp_path / "alerts.jsonl"
    command = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(EXAMPLE), "--input", "-", "--all"]
    done = subprocess.run(
        [*command, "--output", str(output)], input=(GOOD + "\n") * 100, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(output.read_text().splitlines()) == 100 and "from -" in done.stdout


def test_a_model_that_gives_whole_numbers_is_not_a_detector(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from ids_lightning.core.preprocess import Preprocessor

    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    pre = Preprocessor.load(run / "preprocess.json")
    classes = len(pre.class_names)
    weights = helper.make_tensor(
        "w", TensorProto.FLOAT, [pre.num_features, classes], [0.1] * (pre.num_features * classes)
    )
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["scores"]),
            helper.make_node("Cast", ["scores"], ["probabilities"], to=TensorProto.INT64),
        ],
        "integers",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", pre.num_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.INT64, ["batch", classes])],
        [weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), run / "model.onnx")
    flows = tmp_path / "flows.txt"
    flows.write_text(GOOD + "\n")
    with pytest.raises(DataError, match="gives tensor\\(int64\\)"):
        detect(run, flows, tmp_path / "alerts.jsonl", progress=False)


def test_the_model_is_a_file_of_the_run_folder_and_a_regular_one(tmp_path):
    from ids_lightning.core.errors import ConfigError
    from ids_lightning.edge.runtime import load_run

    with pytest.raises(ConfigError, match="names a model file of the run folder"):
        load_run(EXAMPLE, "../../outside/secret.txt")
    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    (run / "model.onnx").unlink()
    os.mkfifo(run / "model.onnx")
    with pytest.raises(DataError, match=r"model\.onnx: not a regular file"):  # never waited on
        load_run(run)


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (b"rows", "not a NumPy array"),
        ("pickle", "not a NumPy array"),
        (np.zeros((16, 7), np.float32), "shape"),
        ("fifo", "not a regular file"),
    ],
)
def test_the_edge_bench_reads_its_rows_as_numbers_of_the_model_s_shape(tmp_path, rows, says):
    """What the bench read raw (a pickle, text, another width, a pipe) was a traceback or a hang."""
    from ids_lightning.edge.latency import bench_rows

    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    np.save(run / "bench_labels.npy", np.zeros(16, np.int64))
    path = run / "bench_rows.npy"
    if isinstance(rows, np.ndarray):
        np.save(path, rows)
    elif isinstance(rows, bytes):
        path.write_bytes(rows)
    elif rows == "pickle":
        np.save(path, np.array([object()], dtype=object), allow_pickle=True)
    else:
        os.mkfifo(path)
    with pytest.raises(DataError, match=says):
        bench_rows(run)
    path.unlink()
    assert bench_rows(run)[0].shape[1:] == (41,)  # without saved rows: synthetic ones of the model's width
