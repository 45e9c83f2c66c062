"""A default run's console tells its story and nothing else: the project's own lines and a few
known Lightning lines, no third-party warnings or adverts."""

from __future__ import annotations

import os
import subprocess
import sys

from ids_lightning.training.config import PROJECT_ROOT
from tests.helpers import DATA_DIR

# Lightning lines that say something about the run (device, stop reason, checkpoint restored)
KNOWN = ("GPU available", "TPU available", "`Trainer.fit` stopped", "Restoring states", "Loaded model weights")


def test_a_default_run_prints_only_its_story(tmp_path):
    env = {**os.environ, "IDS_DATA_DIR": str(DATA_DIR), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "train.py", "debug=limit", f"hydra.run.dir={tmp_path}"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    ours = [line for line in lines if "][ids_lightning." in line]
    summary = [line for line in lines if line.startswith(" ")]  # the end-of-run summary's lines
    bar = [line for line in lines if line.startswith("training ")]
    other = [line for line in lines if line not in ours + summary + bar and not line.startswith(KNOWN)]
    assert not other, "\n".join(other)
    text = "\n".join(ours)
    assert f"run folder: {tmp_path}" in text and text.count("epoch ") >= 3 and "ONNX export:" in text
    assert "test accuracy" in "\n".join(summary) and bar and "batches" in bar[-1]
    assert (tmp_path / "train.log").read_text().count(" - epoch ") == 3
