"""The sensor following a growing Zeek log: the rate it sustains, the time from a line appended
to its record flushed, and its memory, on one core.

``python -m ids_lightning.bench.sensor RUN_DIR`` appends real IoT-23 flows (capture 42-1, each
copy with fresh uids) to a ``conn.log`` at ``--rate`` flows per second for ``--seconds`` while
``ids detect --follow --all --threads 1`` follows it in its own process, then appends as fast as
it can (``--burst`` flows) to find the highest rate. Per flow: when it was appended and when its
record reached the output; the sensor's resident memory sampled each half second. Writes
``--output`` (default ``outputs/bench/sensor.json``) and prints the table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_write_json

CAPTURE = "iot23/CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz"


def flows(data_dir: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(data_dir / CAPTURE, "rt", newline="") as handle:
        lines = handle.readlines()
    return [x for x in lines if x.startswith("#") and not x.startswith("#close")], [
        x.rstrip("\n").split("\t") for x in lines if not x.startswith("#")
    ]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(run_dir: Path, data_dir: Path, rate: float, seconds: float, burst: int, work: Path) -> dict:
    header, rows = flows(data_dir)
    log, output = work / "conn.log", work / "alerts.jsonl"
    log.write_text("".join(header))
    command = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(run_dir), "--input", str(log)]
    command += ["--output", str(output), "--follow", "--all", "--threads", "1"]
    sensor = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    appended: dict[str, float] = {}
    seen: dict[str, float] = {}
    memory: list[float] = []
    done = threading.Event()
    finished = {"at": 0.0}  # when the last flow was appended

    def watch() -> None:  # the output as a SIEM shipper would tail it
        position = 0
        while not done.is_set() or len(seen) < len(appended):
            if output.exists():
                with open(output, "rb") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                whole = chunk[: chunk.rfind(b"\n") + 1]
                position += len(whole)
                now = time.monotonic()
                for line in whole.splitlines():
                    record = json.loads(line)
                    if record.get("uid"):
                        seen.setdefault(record["uid"], now)
            if (mb := rss_mb(sensor.pid)) is not None:
                memory.append(mb)
            time.sleep(0.02)
            if done.is_set() and time.monotonic() - finished["at"] > 30:  # what did not come by then, never will
                break

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(3)  # the sensor's start (imports, model)
    copy = 0

    def append(count: int) -> None:
        nonlocal copy
        batch = []
        for _ in range(count):
            row = list(rows[copy % len(rows)])
            row[1] = f"B{copy:09d}"
            batch.append("\t".join(row) + "\n")
            copy += 1
        with open(log, "a") as handle:
            handle.write("".join(batch))
        now = time.monotonic()
        for line in batch:
            appended[line.split("\t", 2)[1]] = now

    started = time.monotonic()
    while time.monotonic() - started < seconds:  # the steady rate, in 10 ms batches
        append(max(1, int(rate * 0.01)))
        time.sleep(max(0.0, started + copy / rate - time.monotonic()))
    steady = copy
    burst_started = time.monotonic()
    for _ in range(burst // 5000):  # then as fast as it goes
        append(5000)
    finished["at"] = time.monotonic()
    done.set()
    watcher.join(timeout=120)
    burst_seen = [seen[u] for u in list(appended)[steady:] if u in seen]
    sensor.terminate()
    sensor.wait(timeout=30)
    latencies = np.array([seen[u] - appended[u] for u in list(appended)[:steady] if u in seen])
    return {
        "rate_asked": rate,
        "steady_flows": steady,
        "steady_seconds": round(seconds, 1),
        "steady_scored": len(latencies),
        "latency_p50_s": round(float(np.percentile(latencies, 50)), 3) if len(latencies) else None,
        "latency_p99_s": round(float(np.percentile(latencies, 99)), 3) if len(latencies) else None,
        "latency_max_s": round(float(latencies.max()), 3) if len(latencies) else None,
        "burst_flows": copy - steady,
        "burst_scored": len(burst_seen),
        "burst_rate_per_s": round(len(burst_seen) / (max(burst_seen) - burst_started), 1) if burst_seen else None,
        "rss_mb_first": round(memory[len(memory) // 10], 1) if memory else None,
        "rss_mb_last": round(memory[-1], 1) if memory else None,
        "rss_mb_max": round(max(memory), 1) if memory else None,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders (one-flow and windowed runs)")
    parser.add_argument("--rate", type=float, default=5000.0, help="flows per second appended (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long at that rate (default: %(default)s)")
    parser.add_argument(
        "--burst", type=int, default=100_000, help="flows appended at once after (default: %(default)s)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench/sensor.json"), help="JSON file")
    args = parser.parse_args(argv)
    results = []
    for run in args.runs:
        window = json.loads((run / "preprocess.json").read_text()).get("window", 1)
        with tempfile.TemporaryDirectory(prefix="ids-sensor-bench-") as work:
            row = {"run": str(run), "window": window, "load": os.getloadavg()[0]}
            row |= measure(run, args.data_dir, args.rate, args.seconds, args.burst, Path(work))
        results.append(row)
        print(
            f"window {window}: {row['steady_scored']:,}/{row['steady_flows']:,} flows at {args.rate:,.0f}/s, "
            f"latency p50 {row['latency_p50_s']} s, p99 {row['latency_p99_s']} s; burst "
            f"{row['burst_rate_per_s']:,} flows/s; RSS {row['rss_mb_first']} -> {row['rss_mb_last']} MB "
            f"(max {row['rss_mb_max']})"
        )
    atomic_write_json(args.output, results)
    return results


if __name__ == "__main__":
    sys.exit(exit_status(main))
