"""``ids prepare FILE... --output DIR``: flow files of any dataset to Parquet, chunk by chunk
(:mod:`ids_lightning.data.prepare`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ids_lightning.core.errors import exit_status
from ids_lightning.data.prepare import prepare
from ids_lightning.datasets import SPECS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ids prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="flow files (plain or gzipped)")
    parser.add_argument("--output", type=Path, required=True, help="folder for the .parquet files")
    parser.add_argument(
        "--dataset", choices=["auto", *SPECS], default="auto", help="the files' dataset (default: sniffed per file)"
    )
    parser.add_argument("--layout", default="auto", help="BoT-IoT layout (auto, full, full5pc, best10, reduced)")
    parser.add_argument("--chunk-rows", type=int, default=500_000, help="rows per chunk (default: %(default)s)")
    parser.add_argument("--bad-rows", choices=("error", "skip"), default="error", help="stop at or skip bad rows")
    args = parser.parse_args(argv)
    results = prepare(args.inputs, args.output, args.dataset, {"layout": args.layout}, args.chunk_rows, args.bad_rows)
    for row in results:
        print(f"{row['input']} -> {row['output']}: {row['rows']:,} rows, {row['skipped']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
