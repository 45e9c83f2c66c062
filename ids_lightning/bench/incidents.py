"""Host-level detection, leave one capture out: for each shared IoT-23 Zeek capture, a model
trained without it (``dataset.split=by_capture``, the capture as the test partition), validated
on whole other captures (``--validation``: a benign honeypot and a malware capture, which choose
the epoch, the operating point and the incident threshold), then the sensor on the held-out
capture, read per host (:mod:`ids_lightning.evaluation.hosts`): infected hosts detected, time
from a host's first malicious flow to its first incident, false incidents per host-day.

``python -m ids_lightning.bench.incidents [--windows 1 32] [--epochs 3]`` writes ``--output``
(default ``outputs/bench/incidents.json``) and prints the table. The sensor runs with its
defaults: the operating point at 1 % benign false alarms and the incident threshold the run
calibrated on its validation captures (at most 1 false incident per host-day there, 300 s windows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ids_lightning.bench.common import train_quietly
from ids_lightning.core.errors import MissingDataError, exit_status
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.evaluation.hosts import host_level


def captures(data_dir: Path) -> list[Path]:
    found = sorted((data_dir / "iot23").glob("*.conn.log.labeled*"))
    if not found:
        raise MissingDataError(f"no IoT-23 Zeek captures under {data_dir / 'iot23'} (set --data-dir or $IDS_DATA_DIR)")
    return found


# the shared CSV exports, as experiment=sensor validates
VALIDATION = ["CTU-Honeypot-Capture-7-1", "CTU-IoT-Malware-Capture-20-1", "CTU-IoT-Malware-Capture-21-1",
              "CTU-IoT-Malware-Capture-44-1"]  # fmt: skip


def held_out(
    capture: Path, window: int, epochs: int, data_dir: Path, work: Path, validation: list[str], seed: int = 1
) -> dict:
    name = capture.name.split(".")[0]
    run = work / f"{name}_w{window}_seed{seed}"
    overrides = ["dataset=iot23", "model=cnn", f"seed={seed}", "dataset.split=by_capture"]
    overrides += [f"dataset.test_partitions=[{name}]", f"dataset.window={window}", "dataset.val_split=by_capture"]
    overrides += [f"dataset.val_partitions=[{','.join(validation)}]"]
    train_quietly(run, overrides, epochs, data_dir)
    alerts = run / "held_out.jsonl"
    detect = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(run), "--input", str(capture)]
    subprocess.run([*detect, "--output", str(alerts), "--all"], check=True, capture_output=True)
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    summary = json.loads(alerts.with_name(alerts.name + ".summary.json").read_text())
    calibrated = summary["operating_point"].get("incident_calibration") or {}
    return {
        "capture": name,
        "window": window,
        "seed": seed,
        "flow_accuracy": summary.get("accuracy"),
        "incident_rule": summary["incident_rule"],
        "validation_host_days": calibrated.get("host_days"),
        **host_level(records),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 32], help="flows per window (default: 1 32)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="seeds per cell (default: 1)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per held-out capture (default: 3)")
    parser.add_argument(
        "--validation", nargs="+", default=VALIDATION, help="captures that validate every run (default: %(default)s)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench/incidents.json"), help="JSON file")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ids-incidents-") as work:
        for capture in (c for c in captures(args.data_dir.resolve()) if c.name.split(".")[0] not in args.validation):
            for window, seed in ((w, s) for w in args.windows for s in args.seeds):
                row = held_out(capture, window, args.epochs, args.data_dir.resolve(), Path(work), args.validation, seed)
                rows.append(row)
                print(
                    f"{row['capture']:32} window {window:>2} seed {seed}: "
                    f"{row['infected_detected']}/{row['infected_hosts']} "
                    f"infected hosts with an incident (median {row['time_to_detect_median_s']} s), "
                    f"{row['false_incidents']} false incidents ({row['false_incidents_per_host_day']} per host-day); "
                    f"flow accuracy {row['flow_accuracy']}; {row['incident_rule']}"
                )
    atomic_write_json(args.output, rows)
    return rows


if __name__ == "__main__":
    sys.exit(exit_status(main))
