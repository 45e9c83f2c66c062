"""The edge benchmark with torch eager beside the ONNX models, on the training machine.

``python -m ids_lightning.bench.edge RUN_DIR`` (``make edge-bench RUN=...``) runs
:mod:`ids_lightning.edge.bench` (same options) and adds torch eager, on the same real rows,
in a fresh process per thread count, so the report holds the ONNX-vs-torch ratios.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ids_lightning.edge.bench import add_arguments, bench, format_table, in_child, measure, peak_rss_mb, thread_counts


def torch_worker(run_dir: str, threads: int, rows: np.ndarray, labels: np.ndarray, options: dict) -> dict:
    import torch

    from ids_lightning.runs import load_best_model

    torch.set_num_threads(threads)
    model = load_best_model(Path(run_dir))

    @torch.inference_mode()
    def predict(x):
        return model(torch.from_numpy(x)).numpy()

    result = measure(predict, rows, **options)
    result["accuracy"] = float((predict(rows).argmax(1) == labels).mean()) if labels is not None else None
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def torch_rows(context: dict) -> list[dict]:
    rows = []
    for n in context["threads"]:
        args = (str(context["run_dir"]), n, context["rows"], context["labels"], context["options"])
        rows.append({"engine": "torch_eager", "threads": n, **in_child(torch_worker, *args)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    threads = thread_counts(args.threads)
    report = bench(args.run_dir, args.batches, threads, args.latency_calls, args.seconds, extra=torch_rows)
    print(format_table(report))
    print(f"written to {Path(args.run_dir) / 'bench.json'}")
    return report


if __name__ == "__main__":
    main()
