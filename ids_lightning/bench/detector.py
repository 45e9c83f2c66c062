"""Detector throughput and memory on files made by repeating real rows (memory must stay flat).

``python -m ids_lightning.bench.detect RUN_DIR`` builds input files of the run's dataset from
its real shared file (KDDTest+ for NSL-KDD runs, CTU-IoT-Malware-Capture-34-1 for IoT-23 runs)
repeated ``--repeats`` times, runs the detector on each in a fresh process and reports
records/s and peak RSS. Writes ``RUN_DIR/detect_bench.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from ids_lightning.bench.common import build, measure
from ids_lightning.core.errors import ConfigError, exit_status
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.core.preprocess import Preprocessor

SOURCES = {"nsl_kdd": "nsl_kdd/KDDTest+.txt.gz", "iot23": "iot23/CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz"}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder")
    parser.add_argument(
        "--repeats", type=int, nargs="+", default=[1, 8], help="input sizes, as repeats of the real file"
    )
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    args = parser.parse_args(argv)
    dataset = Preprocessor.load(args.run_dir / "preprocess.json").dataset
    if dataset not in SOURCES:
        raise ConfigError(f"no repeatable source file for {dataset} runs (only {sorted(SOURCES)})")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeats in args.repeats:
            name = Path(SOURCES[dataset]).name.removesuffix(".gz")
            path = Path(tmp) / f"x{repeats}_{name}"
            rows = build(args.data_dir / SOURCES[dataset], repeats, path)
            code = (
                "from ids_lightning.edge.detector import detect\n"
                f"rows = detect({str(args.run_dir)!r}, {str(path)!r}, {str(Path(tmp) / 'alerts.jsonl')!r},"
                " progress=False, all_flows=True)['records']\n"  # every flow written: the heaviest output
            )
            measured = measure(code)
            assert measured["rows"] == rows, (measured["rows"], rows)
            results.append(
                {
                    "input_rows": rows,
                    "file_mb": round(path.stat().st_size / 2**20, 1),
                    "records_per_s": round(rows / measured["seconds"]),
                    "peak_rss_mb": round(measured["peak_rss_mb"], 1),
                }
            )
            print(
                f"{rows:>10,} rows ({results[-1]['file_mb']} MB): {results[-1]['records_per_s']:,} records/s, "
                f"peak RSS {results[-1]['peak_rss_mb']} MB"
            )
    atomic_write_json(args.run_dir / "detect_bench.json", results)
    return results


if __name__ == "__main__":
    sys.exit(exit_status(main))
