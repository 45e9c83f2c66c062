"""Zeek parser throughput and memory against ``pandas.read_csv``, on files made of real rows.

``python -m ids_lightning.bench.parse`` repeats the data rows of a real IoT-23 log to build
files of several sizes, then, each in a fresh process, measures rows/s and peak RSS of

- ``project_arrow``: the project's parser (pyarrow engine) over the whole file, in chunks,
  into feature tables (labels checked, history counted), as ``dataset=iot23`` reads it;
- ``project_python``: the same with the standard-library engine used on edge boxes;
- ``prepare_parquet``: ``python -m ids_lightning.cli.prepare`` (parse + write Parquet, chunked);
- ``pandas_read_csv``: ``pandas.read_csv`` of the same file into one DataFrame (no features).

Writes ``outputs/bench/parse.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ids_lightning.bench.common import build, measure
from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.training.config import PROJECT_ROOT

SOURCE = "iot23/CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz"

_RUNNERS = {
    "project_arrow": """
from ids_lightning.datasets import iot23
rows = sum(len(t) for t in iot23.SPEC.iter_tables(PATH, chunk_rows=200_000, engine="arrow"))
""",
    "project_python": """
from ids_lightning.datasets import iot23
rows = sum(len(t) for t in iot23.SPEC.iter_tables(PATH, chunk_rows=200_000, engine="python"))
""",
    "prepare_parquet": """
from pathlib import Path
from ids_lightning.data.prepare import prepare
rows = prepare([Path(PATH)], Path(OUT), chunk_rows=200_000)[0]["rows"]
""",
    "pandas_read_csv": """
import pandas as pd
from ids_lightning.datasets import iot23
layout = iot23.layout_of(PATH)
frame = pd.read_csv(PATH, sep="\\t", comment="#", header=None, names=layout.names, na_values=["-", "(empty)"],
                    low_memory=False)
rows = len(frame)
""",
}


def _measure(kind: str, path: Path, out: Path) -> dict:
    return measure(_RUNNERS[kind].replace("PATH", repr(str(path))).replace("OUT", repr(str(out))))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="default: $IDS_DATA_DIR or data/")
    parser.add_argument(
        "--repeats", type=int, nargs="+", default=[10, 40], help="file sizes, as repeats of the capture"
    )
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "parse.json", help="JSON file"
    )
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir or os.environ.get("IDS_DATA_DIR", "data"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeats in args.repeats:
            path = Path(tmp) / f"x{repeats}.conn.log.labeled"
            rows = build(data_dir / SOURCE, repeats, path)
            size_mb = path.stat().st_size / 2**20
            for kind in _RUNNERS:
                started = time.perf_counter()
                measured = _measure(kind, path, Path(tmp) / "parquet")
                assert measured["rows"] == rows, (kind, measured["rows"], rows)
                results.append(
                    {
                        "path": kind,
                        "rows": rows,
                        "file_mb": round(size_mb, 1),
                        "rows_per_s": round(rows / measured["seconds"]),
                        "peak_rss_mb": round(measured["peak_rss_mb"], 1),
                        "wall_s": round(time.perf_counter() - started, 2),
                    }
                )
    atomic_write_json(args.output, results)
    table = Table(title="Zeek conn.log parsing (rows repeated from CTU-IoT-Malware-Capture-34-1)")
    for column in ("path", "rows", "file MB", "rows/s", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in results:
        table.add_row(
            row["path"],
            f"{row['rows']:,}",
            f"{row['file_mb']:.0f}",
            f"{row['rows_per_s']:,}",
            f"{row['peak_rss_mb']:.0f}",
        )
    Console().print(table)
    Console().print(f"written to {args.output}")
    return results


if __name__ == "__main__":
    sys.exit(exit_status(main))
