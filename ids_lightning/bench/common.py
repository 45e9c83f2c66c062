"""Measurements in a fresh Python process, so that peak memory belongs to one job only."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from ids_lightning.config import PROJECT_ROOT

_FOOTER = (
    "\nimport json as _json, resource as _resource, time as _time\n"
    "print(_json.dumps({'rows': rows, 'seconds': _time.perf_counter() - _started,"
    " 'peak_rss_mb': _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
)


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
