"""Kill and resume, determinism, re-run sweeps, and fuzzed parsers: nothing lost, nothing trusted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ids_lightning.formats import bot_iot, nsl_kdd

from ids_lightning.config import PROJECT_ROOT, compose
from ids_lightning.core.errors import DataError
from ids_lightning.train import train
from tests.conftest import DATA_DIR, QUIET
from tests.test_nsl_kdd_format import GOOD

TIMING_KEYS = {"fit_seconds"}
SMALL_RUN = [
    "dataset=bot_iot",
    "model=cnn",
    "trainer.max_epochs=4",
    *QUIET,
    "callbacks.onnx_export=null",
    "callbacks.early_stopping=null",
]


def comparable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


def run_train(run_dir, *overrides) -> subprocess.Popen:
    env = {**os.environ, "IDS_DATA_DIR": str(DATA_DIR), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *SMALL_RUN, f"hydra.run.dir={run_dir}", *overrides],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def last_epoch(run_dir) -> int:
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        return torch.load(last, weights_only=True, map_location="cpu")["epoch"]
    except (FileNotFoundError, EOFError, RuntimeError):
        return -1


def test_killed_run_resumes_to_the_same_numbers(tmp_path, data_dir):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = run_train(whole)
    victim = run_train(killed)
    deadline = time.time() + 300
    while last_epoch(killed) < 1:  # a checkpoint after epoch 1 exists: epoch 2 is under way
        assert victim.poll() is None and time.time() < deadline, victim.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (killed / "metrics.json").exists()
    resumed = run_train(killed)  # same folder: resumes from checkpoints/last.ckpt
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()[-2000:]
    assert reference.wait(timeout=600) == 0, reference.stderr.read().decode()[-2000:]
    a = json.loads((whole / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["epochs_run"] == b["epochs_run"] == 4
    for key, value in comparable(a).items():
        if isinstance(value, float):
            assert b[key] == pytest.approx(value, abs=1e-6), key
        else:
            assert b[key] == value, key
    history = json.loads((killed / "evaluation.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [0, 1, 2, 3]


def test_same_seed_same_numbers_on_cpu(tmp_path, data_dir):
    overrides = [*SMALL_RUN, "trainer.max_epochs=2", "seed=7"]
    first = train(compose(overrides, tmp_path / "a", data_dir=DATA_DIR))
    second = train(compose(overrides, tmp_path / "b", data_dir=DATA_DIR))
    assert comparable(first) == comparable(second)
    other = train(compose([*SMALL_RUN, "trainer.max_epochs=2", "seed=8"], tmp_path / "c", data_dir=DATA_DIR))
    assert other["test/loss"] != first["test/loss"]


def test_a_rerun_skips_finished_jobs(tmp_path, data_dir):
    overrides = [*SMALL_RUN, "debug=fast_dev_run"]
    first = train(compose(overrides, tmp_path, data_dir=DATA_DIR))
    stamp = (tmp_path / "metrics.json").stat().st_mtime_ns
    again = train(compose(overrides, tmp_path, data_dir=DATA_DIR))
    assert again == json.loads(json.dumps(first))
    assert (tmp_path / "metrics.json").stat().st_mtime_ns == stamp


def test_outputs_leave_no_temporary_files(tmp_path, data_dir):
    with_export = [o for o in SMALL_RUN if o != "callbacks.onnx_export=null"]
    train(compose([*with_export, "debug=fast_dev_run"], tmp_path, data_dir=DATA_DIR))
    assert not [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name or p.name.endswith(".part")]
    assert (tmp_path / "model.onnx").is_file()


line_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=120)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.one_of(line_text, st.just(GOOD), line_text.map(lambda t: GOOD[:40] + t)), max_size=12))
def test_nsl_kdd_parser_scores_or_counts_every_line(lines):
    table = nsl_kdd.parse_lines(lines, "fuzz", bad_rows="skip", require_label=False)
    assert len(table) + len(table.skipped) == len(lines)
    assert set(table.line.tolist()).isdisjoint(line for _, line, _ in table.skipped)


CSV_HEADER = "flgs,proto,pkts,bytes,dur,mean,stddev,sum,min,max,rate,category"
CSV_ROW = "e,tcp,10,680,1453.9,2.8e-05,8e-06,0.000138,2.2e-05,4.2e-05,0.00619,Normal"
csv_line = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters='\r\n"'), max_size=80)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(csv_line, st.just(CSV_ROW), csv_line.map(lambda t: CSV_ROW[:30] + t)), max_size=10))
def test_bot_iot_csv_parser_scores_or_counts_every_line(tmp_path, lines):
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join([CSV_HEADER, CSV_ROW, *lines]) + "\n")
    for engine in ("arrow", "python"):
        try:
            tables = list(bot_iot.iter_tables(path, bad_rows="skip", engine=engine))
        except DataError:
            continue  # the project's own clear error (e.g. a layout it cannot read)
        rows = sum(len(t) for t in tables)
        skipped = {line for t in tables for _, line, _ in t.skipped}
        assert rows + len(skipped) == len(lines) + 1, engine
