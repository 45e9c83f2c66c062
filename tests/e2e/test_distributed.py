"""DDP with two CPU processes (gloo): the numbers of one process, one run folder, and a resume
after a kill. Each rank trains on every second row of the epoch's permutation with half the
batch, so the two ranks' averaged gradients are one process's batch gradient: only the last
step of an epoch differs (DDP drops the odd row), so the test metrics agree to a few rows."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import time

import pytest

from tests.e2e.test_reliability import last_epoch, run_train
from tests.helpers import QUIET, comparable

pytestmark = pytest.mark.slow

RUN = [
    "dataset=bot_iot",
    "model=cnn",
    "model.net.dropout=0",  # ranks draw dropout from their own streams: off, to compare exactly
    "trainer.max_epochs=3",
    *QUIET,
    "export=none",
    "callbacks.early_stopping=null",
]
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "dataset.batch_size=32"]
# test rows of BoT-IoT's slice: 2,829; a few rows' worth of difference, from the last step of each epoch
TOLERANCE = {"test/acc": 0.005, "test/f1_macro": 0.005, "test/auroc": 0.002}


start = functools.partial(run_train, base=RUN)


def finish(process: subprocess.Popen) -> None:
    assert process.wait(timeout=900) == 0, process.stderr.read().decode()[-3000:]


def test_two_processes_give_the_numbers_of_one(tmp_path, data_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    finish(start(one, "dataset.batch_size=64"))
    finish(start(two, *DDP))
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (one, two))
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert a["class_counts"] == b["class_counts"]  # each test row counted once
    for key, tolerance in TOLERANCE.items():
        assert b[key] == pytest.approx(a[key], abs=tolerance), key
    # one folder: rank 0 wrote everything; the other rank's log is the only trace of it
    names = {path.name for path in two.iterdir()}
    assert {"metrics.json", "fit.json", "config.yaml", "preprocess.json", "checkpoints"} <= names
    assert "train_ddp_process_1.log" in names


def test_a_killed_distributed_run_resumes_to_the_same_numbers(tmp_path, data_dir):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    finish(start(whole, *DDP))
    victim = start(killed, *DDP)
    deadline = time.time() + 600
    while last_epoch(killed) < 1:  # epoch 2 is under way
        assert victim.poll() is None and time.time() < deadline, victim.stderr.read().decode()[-3000:]
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (killed / "metrics.json").exists()
    finish(start(killed, *DDP))  # same folder: both ranks resume from checkpoints/last.ckpt
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (whole, killed))
    for key, value in comparable(a).items():
        if isinstance(value, float):
            assert b[key] == pytest.approx(value, abs=1e-6), key
        else:
            assert b[key] == value, key


def test_ranks_stream_their_own_chunks_out_of_core(tmp_path, data_dir):
    """DDP out of core: each rank reads its own chunks of prepared IoT-23, rank 0 tests."""
    from ids_lightning.data.prepare import prepare

    captures = sorted(data_dir.glob("iot23/*.conn.log.labeled*")) + sorted(data_dir.glob("iot23/csv_exports/*.csv*"))
    prepare(captures, tmp_path / "data" / "iot23", dataset="iot23", chunk_rows=4_000)
    run = tmp_path / "run"
    overrides = ["dataset=iot23", "dataset.files=[iot23/*.parquet]", "dataset.in_memory=false", "model=cnn"]
    base = [*QUIET, "trainer.max_epochs=2", "export=none"]
    process = start(run, *overrides, *DDP[:3], base=base, data_dir=tmp_path / "data")
    finish(process)
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["in_memory"]) == (2, False)
    # a model that learned (chance: macro-F1 about 0.45, AUC 0.5); test is a family it never saw
    assert metrics["val/f1_macro_best"] > 0.9 and metrics["test/auroc"] > 0.9
