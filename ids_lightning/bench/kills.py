"""The sensor killed with SIGKILL at random moments while it follows a growing log, and started
again each time: its alerts and incidents must equal an uninterrupted run's, none twice, none
missing, per-host windows and open incidents included.

``python -m ids_lightning.bench.kills RUN_DIR [--lines 1000000] [--kills 20]`` builds a Zeek log
of ``--lines`` real IoT-23 flows (capture 42-1 over and over, each copy with fresh uids and its
times moved on by the capture's span, so hosts keep their windows and incidents keep opening).
The uninterrupted run scores the whole log once. The killed run follows the log while it is
appended at ``--rate`` lines per second; ``--kills`` times, after a random 1 to 6 s, the sensor
is killed and the same command started again; when the log is complete and the sensor has
caught up, it is stopped with SIGTERM. Writes ``--output`` (default
``outputs/bench/kills.json``) and prints the result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from ids_lightning.bench.sensor import flows
from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_write_json

TS, UID = 0, 1  # Zeek conn.log columns


def write_log(path: Path, header: list[str], rows: list[list[str]], lines: int) -> list[str]:
    """The header, then ``lines`` flows: copies of ``rows`` with fresh uids, each copy's times
    moved on by the capture's span. Returns the flow lines (what the killed run's log grows by)."""
    times = [float(r[TS]) for r in rows]
    span = max(times) - min(times) + 1.0
    body = []
    for n in range(lines):
        row = list(rows[n % len(rows)])
        row[TS] = f"{float(row[TS]) + (n // len(rows)) * span:.6f}"
        row[UID] = f"K{n:09d}"
        body.append("\t".join(row) + "\n")
    path.write_text("".join(header) + "".join(body))
    return body


def records(path: Path) -> list[dict]:
    """The output's records without the input file's name (the two runs read logs at two paths)."""
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.get("input", {}).pop("file", None)
        out.append(record)
    return out


def summary_records(output: Path) -> int:
    try:
        return int(json.loads(output.with_name(output.name + ".summary.json").read_text())["records"])
    except (OSError, ValueError, KeyError):
        return -1


def killed_run(command: list[str], log: Path, body: list[str], output: Path, kills: int, rate: float, seed: int):
    """Follow ``log`` as it grows, killing and restarting the sensor ``kills`` times."""
    rng = random.Random(seed)
    grown = threading.Event()

    def grow() -> None:
        block = max(1, int(rate / 10))
        started = time.monotonic()
        with open(log, "a") as handle:
            for i in range(0, len(body), block):
                handle.write("".join(body[i : i + block]))
                handle.flush()
                time.sleep(max(0.0, started + (i + block) / rate - time.monotonic()))
        grown.set()

    writer = threading.Thread(target=grow, daemon=True)
    writer.start()
    starts, done = 0, 0
    while done < kills:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        starts += 1
        time.sleep(rng.uniform(1.0, 6.0))
        if process.poll() is not None:
            raise RuntimeError(f"the sensor ended by itself (status {process.returncode}) before kill {done + 1}")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        done += 1
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    starts += 1
    grown.wait()
    while summary_records(output) < len(body):  # caught up with the complete log
        if process.poll() is not None:
            raise RuntimeError(f"the sensor ended by itself (status {process.returncode})")
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    return starts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="run folder (a windowed IoT-23 run keeps per-host windows)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="flows in the log (default: %(default)s)")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=20_000, help="lines appended per second (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the kill moments' seed (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench/kills.json"), help="JSON file")
    args = parser.parse_args(argv)
    header, rows = flows(args.data_dir)
    base = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(args.run), "--threads", "1"]
    with tempfile.TemporaryDirectory(prefix="ids-kills-") as work:
        whole_dir, killed_dir = Path(work, "whole"), Path(work, "killed")
        whole_dir.mkdir(), killed_dir.mkdir()
        body = write_log(whole_dir / "conn.log", header, rows, args.lines)
        started = time.monotonic()
        whole = whole_dir / "alerts.jsonl"
        subprocess.run([*base, "--input", str(whole_dir / "conn.log"), "--output", str(whole), "--state",
                        str(whole_dir / "state.json")], check=True, capture_output=True)  # fmt: skip
        whole_seconds = time.monotonic() - started
        log = killed_dir / "conn.log"
        log.write_text("".join(header))
        killed = killed_dir / "alerts.jsonl"
        command = [*base, "--input", str(log), "--output", str(killed), "--follow"]
        started = time.monotonic()
        starts = killed_run(command, log, body, killed, args.kills, args.rate, args.seed)
        killed_seconds = time.monotonic() - started
        expected, got = records(whole), records(killed)
        keys = lambda rs: Counter(json.dumps(r, sort_keys=True) for r in rs)  # noqa: E731
        want, have = keys(expected), keys(got)
        summaries = [json.loads(p.with_name(p.name + ".summary.json").read_text()) for p in (whole, killed)]
    result = {
        "run": str(args.run),
        "window": json.loads((args.run / "preprocess.json").read_text()).get("window", 1),
        "lines": args.lines,
        "kills": args.kills,
        "starts": starts,
        "rate_appended_per_s": args.rate,
        "load": os.getloadavg()[0],
        "records_uninterrupted": len(expected),
        "alerts_uninterrupted": sum(r["event_type"] == "alert" for r in expected),
        "incidents_uninterrupted": sum(r["event_type"] == "incident" for r in expected),
        "records_killed": len(got),
        "duplicates": sum(n - 1 for n in have.values() if n > 1),
        "missing": sum((want - have).values()),
        "extra": sum((have - want).values()),
        "identical_in_order": expected == got,
        "flows_scored": [s["records"] for s in summaries],
        "seconds_uninterrupted": round(whole_seconds, 1),
        "seconds_killed": round(killed_seconds, 1),
    }
    print(
        f"{args.lines:,} lines, {args.kills} SIGKILLs ({starts} starts): {result['records_killed']:,} records vs "
        f"{result['records_uninterrupted']:,} uninterrupted ({result['alerts_uninterrupted']:,} alerts, "
        f"{result['incidents_uninterrupted']:,} incidents); duplicates {result['duplicates']}, missing "
        f"{result['missing']}, extra {result['extra']}; identical in order: {result['identical_in_order']}"
    )
    atomic_write_json(args.output, result)
    return result


if __name__ == "__main__":
    sys.exit(exit_status(main))
