"""Flower's deployment engine on loopback: SuperLink and SuperNodes as separate processes,
started and stopped by the test through the project's own command."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time

import psutil

from ids_lightning.training.config import PROJECT_ROOT
from tests.helpers import FEDERATED_SITES as SITES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_deployment_engine_on_loopback(tmp_path, nsl_kdd_slice):
    """SuperLink and two SuperNodes as separate processes over 127.0.0.1, started by the
    project's command; a submitted 1-round run writes its run folder."""
    env = {**os.environ, "FLWR_HOME": str(tmp_path / "flower"), "IDS_DATA_DIR": str(nsl_kdd_slice)}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "ids_lightning.cli.federated"]
    overrides = [*SITES, "federated.clients=2", "federated.rounds=1"]
    link = _free_port()
    processes = []

    def start(name: str, *arguments: str) -> None:
        with open(tmp_path / f"{name}.log", "w") as log:  # the child keeps its own copy of the handle
            started = subprocess.Popen([*command, *arguments], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=log)
        processes.append(started)

    try:
        start("superlink", "superlink", "--port", str(link))
        time.sleep(3)
        for site in (0, 1):
            start(f"site{site}", "supernode", "--superlink", f"127.0.0.1:{link}", "--site", str(site), "--sites", "2",
                  "--port", str(_free_port()), *overrides)  # fmt: skip
        run_dir = tmp_path / "run"
        submitted = subprocess.run(
            [*command, "submit", "--superlink", f"127.0.0.1:{link}", "--output-dir", str(run_dir), *overrides],
            env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        logs = "".join(p.read_text()[-2000:] for p in sorted(tmp_path.glob("*.log")))
        assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:] + logs
        summary = json.loads((run_dir / "metrics.json").read_text())
        assert summary["federated/sites"] == 2 and summary["federated/best_round"] == 1
        assert (run_dir / "model.onnx").is_file() and (run_dir / "federated.png").is_file()
    finally:
        _stop(processes)


def _stop(processes: list[subprocess.Popen]) -> None:
    """The Flower processes and every process they started (SuperExec runs detached)."""
    family = []
    for process in processes:
        try:
            family += [process.pid, *(child.pid for child in psutil.Process(process.pid).children(recursive=True))]
        except psutil.NoSuchProcess:
            continue
    for pid in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    for process in processes:
        process.wait(timeout=30)
