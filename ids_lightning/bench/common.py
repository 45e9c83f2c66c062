"""Measurements in a fresh Python process, so that peak memory belongs to one job only."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from ids_lightning.training.config import PROJECT_ROOT

_FOOTER = (
    "\nimport json as _json, time as _time\n"
    "from ids_lightning.bench.common import peak_rss_mb as _peak\n"
    "print(_json.dumps({'rows': rows, 'seconds': _time.perf_counter() - _started, 'peak_rss_mb': _peak()}))\n"
)


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program, in MB. Linux's VmHWM,
    not ``getrusage``'s ``ru_maxrss``: that one survives ``exec`` and so counts the parent's
    memory that a child had right after the fork (a parent of 3 GB made every child "peak" at 3 GB)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(code: str) -> dict:
    """Run ``code`` (which must set ``rows``) in a child; return rows, seconds and peak RSS (MB)."""
    program = "import time as _t\n_started = _t.perf_counter()\n" + code + _FOOTER
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=PROJECT_ROOT)
    if result.returncode:
        raise RuntimeError(f"measurement failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def build(source: Path, repeats: int, target: Path) -> int:
    """``source``'s header lines once, then its data rows ``repeats`` times; returns the row count."""
    with gzip.open(source, "rt", newline="") as handle:
        lines = handle.readlines()
    header = [line for line in lines if line.startswith("#") and not line.startswith("#close")]
    rows = [line for line in lines if not line.startswith("#")]
    with open(target, "w", newline="") as out:
        out.writelines(header)
        for _ in range(repeats):
            out.writelines(rows)
    return len(rows) * repeats


def train_quietly(run: Path, overrides: list[str], epochs: int, data_dir: Path) -> Path:
    """``ids train`` of ``overrides`` into ``run`` in its own process, for ``epochs`` epochs,
    without logger, progress bar or int8 model: what the benches that train their own runs share."""
    command = [sys.executable, "-m", "ids_lightning", "train", "logger=none", *overrides]
    command += [f"trainer.max_epochs={epochs}", "export.quantize=false", f"hydra.run.dir={run}"]
    command += ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null", f"paths.data_dir={data_dir}"]
    subprocess.run(command, check=True, capture_output=True)
    return run
