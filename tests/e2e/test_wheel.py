"""The built wheel trains: installed where the checkout cannot be imported (not editable), run
from another folder, ``ids train`` composes the packaged config and ``ids detect`` scores with
the run it made."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.slow  # builds and installs the wheel apart: the e2e tier


def _not_sources(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: the checkout's environment, data, outputs and build products."""
    top = {".venv", ".git", "outputs", "build", "dist", "data"} if Path(folder) == PROJECT_ROOT else set()
    return {n for n in names if n in top or n == "__pycache__" or n.endswith(".egg-info")}


def test_the_installed_wheel_trains_and_detects(tmp_path, nsl_kdd_slice):
    source, wheels, site, work = tmp_path / "source", tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    # built from a copy: no build/ or egg-info left in the checkout, none of theirs in the wheel
    shutil.copytree(PROJECT_ROOT, source, ignore=_not_sources)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), "."]
    subprocess.run(build, cwd=source, check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("ids_lightning-*.whl"))
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    # the wheel's package first on the path; the dependencies from this environment
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    env["IDS_DATA_DIR"] = str(nsl_kdd_slice)

    def ids(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "ids_lightning", *args]
        return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import ids_lightning; print(ids_lightning.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(site)), where.stdout
    run = work / "run"
    trained = ids("train", "debug=limit", "trainer.max_epochs=1", "model=cnn", "logger=none", f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (run / "metrics.json").is_file() and (run / "model.onnx").is_file()
    flows = nsl_kdd_slice / "nsl_kdd" / "KDDTest+.txt"
    detected = ids("detect", "--run", str(run), "--input", str(flows), "--output", str(work / "alerts.jsonl"), "--all")
    assert detected.returncode == 0, detected.stderr[-3000:]
    assert sum(1 for _ in (work / "alerts.jsonl").open()) == 2000
