"""``ids edge-bench RUN_DIR``: ONNX latency and throughput of a run folder on this box, torch-free
(:mod:`ids_lightning.edge.latency`); ``--torch`` adds torch eager on the same rows (needs the
training install: :mod:`ids_lightning.bench.edge_torch`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ids_lightning.cli.arguments import positive, positive_seconds, thread_count_or_all
from ids_lightning.core.errors import exit_status
from ids_lightning.edge.latency import bench, format_table, thread_counts


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ids edge-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a finished run folder (model.onnx, bench_rows.npy)")
    parser.add_argument(
        "--batches", type=positive, nargs="+", default=[1, 16, 256, 1024], help="batch sizes (default: %(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=thread_count_or_all,
        nargs="+",
        default=[1, "all"],
        help="thread counts; 'all' = every core (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-calls",
        type=positive,
        default=2000,
        help="batch-1 calls timed for the percentiles (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds", type=positive_seconds, default=1.0, help="time per throughput measurement (default: %(default)s)"
    )
    parser.add_argument("--torch", action="store_true", help="also torch eager, in a fresh process per thread count")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    extra = None
    if args.torch:
        from ids_lightning.bench.edge_torch import torch_rows as extra
    threads = thread_counts(args.threads)
    report = bench(args.run_dir, args.batches, threads, args.latency_calls, args.seconds, extra=extra)
    print(format_table(report))
    print(f"written to {Path(args.run_dir) / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
