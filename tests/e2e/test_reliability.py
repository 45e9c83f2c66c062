"""Kill and resume: a run killed mid-epoch resumes to the numbers of an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ids_lightning.training.config import PROJECT_ROOT
from tests.helpers import DATA_DIR, SMALL_RUN, comparable


def run_train(run_dir, *overrides, base=SMALL_RUN, data_dir=DATA_DIR) -> subprocess.Popen:
    """``train.py`` with ``base`` and ``overrides`` into ``run_dir``, in a session of its own: the
    processes it starts (DDP ranks) share its group, so one kill of the group ends them all."""
    env = {**os.environ, "IDS_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *base, f"hydra.run.dir={run_dir}", *overrides],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def last_epoch(run_dir) -> int:
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        return torch.load(last, weights_only=True, map_location="cpu")["epoch"]
    except (FileNotFoundError, EOFError, RuntimeError):
        return -1


def kill_after_epoch_one(run_dir, *overrides) -> None:
    victim = run_train(run_dir, *overrides)
    deadline = time.time() + 300
    while last_epoch(run_dir) < 1:  # a checkpoint after epoch 1 exists: epoch 2 is under way
        assert victim.poll() is None and time.time() < deadline, victim.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()


def test_killed_run_resumes_to_the_same_numbers(tmp_path, data_dir):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = run_train(whole)
    kill_after_epoch_one(killed)
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


def test_killed_batched_seeds_resume_to_the_same_numbers(tmp_path, data_dir):
    """Seeds trained together: each seed's history, random streams and early-stopping state
    continue where the kill left them."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    seeds = ("seeds=[1,2]",)  # the CNN's dropout (0.3) draws from each seed's own stream
    reference = run_train(whole, *seeds)
    kill_after_epoch_one(killed, *seeds)
    assert not (killed / "replicas.json").exists()
    resumed = run_train(killed, *seeds)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()[-2000:]
    assert reference.wait(timeout=600) == 0, reference.stderr.read().decode()[-2000:]
    for seed in (1, 2):
        a = json.loads((whole / f"seed_{seed}" / "metrics.json").read_text())
        b = json.loads((killed / f"seed_{seed}" / "metrics.json").read_text())
        assert a["epochs_run"] == b["epochs_run"] == 4
        for key, value in comparable(a).items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, abs=1e-6), (seed, key)
            else:
                assert b[key] == value, (seed, key)
