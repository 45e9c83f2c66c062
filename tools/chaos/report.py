"""Probes of ``ids report``: hostile and broken sweep folders."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tools.chaos.lab import (
    Lab,
    Probe,
)


def report_probes(lab: Lab) -> list[Probe]:
    from ids_lightning.analysis.report import report

    def sweep(content: bytes | None) -> Path:
        folder = lab.root / "sweeps" / str(time.perf_counter_ns())
        (folder / "0").mkdir(parents=True)
        if content is not None:
            (folder / "0" / "metrics.json").write_bytes(content)
        return folder

    honest = json.dumps(
        {"model": "cnn", "dataset": "nsl_kdd", "split": "official", "seed": 1, "test/acc": 0.75}
    ).encode()
    return [
        Probe("report: metrics.json not JSON", "report", lambda _: report([sweep(b"{oops")]), True),
        Probe("report: metrics.json a list", "report", lambda _: report([sweep(b"[1, 2]")]), True),
        Probe("report: no runs", "report", lambda _: report([sweep(None)]), True),
        Probe("report: one honest run", "report", lambda _: report([sweep(honest)]) and None, False),
    ]
