"""The sensor on arm64 under qemu, record by record against x86: a small `make edge-arm64`."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys

import pytest

from tests.helpers import DATA_DIR
from tools.edge_arm64 import ROOT_DIR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")),
        reason="qemu-user-static is not installed (apt-get install qemu-user-static debootstrap): "
        "the arm64 check runs the sensor under qemu",
    ),
    pytest.mark.skipif(
        platform.machine() != "x86_64" or not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="the arm64 root is built by debootstrap as root on an x86_64 Linux box",
    ),
]


def test_the_arm64_sensor_matches_x86_on_every_record_of_a_small_check():
    cache = ROOT_DIR / "outputs" / "edge-arm64"  # shared with make edge-arm64: built once
    command = [sys.executable, "-m", "tools.edge_arm64", "--cache", str(cache), "--data-dir", str(DATA_DIR)]
    command += ["--kdd-records", "300", "--iot-records", "300", "--explained-records", "30", "--int8-records", "300"]
    result = subprocess.run(command, cwd=ROOT_DIR, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((cache / "report.json").read_text())
    assert report["runtime"]["arm64"]["machine"] == "aarch64"
    assert set(report["parity"]) == {
        "nsl_kdd_kddtest", "nsl_kdd_explained", "iot23_window8", "iot23_window8_explained",
        "iot23_window8_stdin", "iot23_window8_follow", "nsl_kdd_int8", "iot23_window8_int8",
    }  # fmt: skip
    for name, case in report["parity"].items():
        assert case["parity"] and case["records"] == case["records_arm64"] > 0, name
        assert case["max_abs_prob_diff"] <= (1e-2 if name.endswith("int8") else 1e-5), name
    assert report["parity"]["nsl_kdd_explained"]["explanations"] > 0
    assert report["bench"]["nsl_kdd/arm64"]["runtime"]["emulator"].startswith("qemu-aarch64")
    assert report["bench"]["nsl_kdd/arm64"]["engine_choice"]["why"].startswith("emulated, so not a board's choice")
    assert report["bench"]["nsl_kdd/x86_64"]["runtime"]["emulator"] is None
