"""The edge benchmark with torch eager beside the ONNX models, on the training machine.

``ids edge-bench RUN_DIR --torch`` (``make edge-bench RUN=...``) runs
:mod:`ids_lightning.edge.latency` and adds torch eager (:func:`torch_rows`), on the same real
rows, in a fresh process per thread count, so the report holds the ONNX-vs-torch ratios.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ids_lightning.edge.latency import in_child, measure, peak_rss_mb


def torch_worker(run_dir: str, threads: int, rows: np.ndarray, labels: np.ndarray, options: dict) -> dict:
    import torch

    from ids_lightning.training.run_folder import load_best_model

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
