"""Host-level detection, leave one capture out: for each shared IoT-23 Zeek capture, a model
trained without it (``dataset.split=by_capture``, the capture as the test partition; chosen on
its own validation rows), then the sensor on the held-out capture, read per host
(:mod:`ids_lightning.evaluation.hosts`): infected hosts detected, time from a host's first
malicious flow to its first incident, false incidents per host-day.

``python -m ids_lightning.bench.incidents [--windows 1 32] [--epochs 3]`` writes ``--output``
(default ``outputs/bench/incidents.json``) and prints the table. The sensor runs with its
defaults (operating point at 1 % benign false alarms from validation, 5 alerts in 300 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ids_lightning.core.errors import MissingDataError, exit_status
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.evaluation.hosts import host_level


def captures(data_dir: Path) -> list[Path]:
    found = sorted((data_dir / "iot23").glob("*.conn.log.labeled*"))
    if not found:
        raise MissingDataError(f"no IoT-23 Zeek captures under {data_dir / 'iot23'} (set --data-dir or $IDS_DATA_DIR)")
    return found


def held_out(capture: Path, window: int, epochs: int, data_dir: Path, work: Path) -> dict:
    name = capture.name.split(".")[0]
    run = work / f"{name}_w{window}"
    train = [sys.executable, "-m", "ids_lightning", "train", "logger=none", "dataset=iot23", "model=cnn"]
    train += ["dataset.split=by_capture", f"dataset.test_partitions=[{name}]", f"dataset.window={window}"]
    train += [f"trainer.max_epochs={epochs}", "export.quantize=false", f"hydra.run.dir={run}"]
    train += ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null", f"paths.data_dir={data_dir}"]
    subprocess.run(train, check=True, capture_output=True)
    alerts = run / "held_out.jsonl"
    detect = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(run), "--input", str(capture)]
    subprocess.run([*detect, "--output", str(alerts), "--all"], check=True, capture_output=True)
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    summary = json.loads(alerts.with_name(alerts.name + ".summary.json").read_text())
    return {"capture": name, "window": window, "flow_accuracy": summary.get("accuracy"), **host_level(records)}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 32], help="flows per window (default: 1 32)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per held-out capture (default: 3)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench/incidents.json"), help="JSON file")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ids-incidents-") as work:
        for capture in captures(args.data_dir.resolve()):
            for window in args.windows:
                row = held_out(capture, window, args.epochs, args.data_dir.resolve(), Path(work))
                rows.append(row)
                print(
                    f"{row['capture']:32} window {window:>2}: {row['infected_detected']}/{row['infected_hosts']} "
                    f"infected hosts with an incident (median {row['time_to_detect_median_s']} s), "
                    f"{row['false_incidents']} false incidents ({row['false_incidents_per_host_day']} per host-day); "
                    f"flow accuracy {row['flow_accuracy']}"
                )
    atomic_write_json(args.output, rows)
    return rows


if __name__ == "__main__":
    sys.exit(exit_status(main))
