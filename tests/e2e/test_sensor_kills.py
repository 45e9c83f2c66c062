"""The sensor killed with SIGKILL at random moments and started again: every flow written once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from ids_lightning.core.fileio import open_text
from tests.helpers import NSL_KDD_TEST, PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "nsl_kdd_cnn_lstm"


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_sensor_killed_at_random_moments_writes_every_flow_once(tmp_path):
    """SIGKILL while scoring (the state says where the last committed batch ended), then the
    same command again: the output equals an uninterrupted run's, line for line."""
    source = tmp_path / "flows.txt"  # KDDTest+ three times: about six seconds of scoring
    with open_text(NSL_KDD_TEST) as handle:
        source.write_text(handle.read() * 3)
    command = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(EXAMPLE), "--input", str(source)]
    command += ["--all", "--chunk-rows", "250", "--threads", "1"]
    whole = tmp_path / "whole.jsonl"
    subprocess.run([*command, "--output", str(whole), "--state", str(tmp_path / "whole.state")], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    killed = tmp_path / "killed.jsonl"
    again = [*command, "--output", str(killed), "--state", str(tmp_path / "killed.state")]
    rng = random.Random(0)
    kills = 0
    while kills < 6:
        process = subprocess.Popen(again, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.6, 1.5))  # a start takes about 0.6 s
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
    subprocess.run(again, check=True, capture_output=True, timeout=120)
    drop = lambda r: {k: v for k, v in r.items() if k != "timestamp"}  # noqa: E731 - NSL-KDD: the scoring time
    assert kills >= 2, "the runs ended before a kill: the test checked nothing"
    assert [drop(r) for r in records(killed)] == [drop(r) for r in records(whole)] and len(records(whole)) == 67632
    summary = json.loads((tmp_path / "killed.jsonl.summary.json").read_text())
    assert summary["records"] == 67632 and summary["written"] == 67632
