"""Inference benchmark of a run folder on this machine (a Pi, a Jetson, a laptop).

``python -m ids_lightning.cli.edge_bench RUN_DIR`` measures, on the real preprocessed test rows the
run saved (``bench_rows.npy``), for ``model.onnx`` and ``model.int8.onnx``, with one thread and
with all cores: batch-1 latency (p50/p95/p99; for a windowed run, of one flow scored with its
window), throughput at several batch sizes, peak RSS of a
process that only loads and runs that model, and the model's file size.
Writes ``RUN_DIR/bench.json`` and prints a table. Needs only numpy and onnxruntime; the
comparison with torch eager runs on the training side (``ids edge-bench RUN_DIR --torch``).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import atomic_write_json, regular_file
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.edge.runtime import cpu_count, int8_unsupported

MODELS = {"onnx_fp32": "model.onnx", "onnx_int8": "model.int8.onnx"}


def measure(predict, rows: np.ndarray, batches: list[int], latency_calls: int, seconds: float) -> dict:
    """Batch-1 latency percentiles over single real rows, then rows/s per batch size."""
    for i in range(20):
        predict(rows[i % len(rows)][None])
    times = np.empty(latency_calls)
    for i in range(latency_calls):
        row = rows[i % len(rows)][None]
        started = time.perf_counter_ns()
        predict(row)
        times[i] = time.perf_counter_ns() - started
    result = {f"batch1_p{q}_us": round(float(np.percentile(times, q)) / 1000, 2) for q in (50, 95, 99)}
    throughput = {}
    for batch in batches:
        chunk = np.ascontiguousarray(np.resize(rows, (batch, *rows.shape[1:])))
        predict(chunk)
        done, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds or done == 0:
            predict(chunk)
            done += batch
        throughput[str(batch)] = round(done / elapsed)
    result["rows_per_s"] = throughput
    return result


def peak_rss_mb() -> float:
    """This process's peak resident memory. On Linux from ``VmHWM``, which starts afresh at exec:
    ``ru_maxrss`` would also count the parent's memory at the fork (a bench started from a
    training process would report the trainer's size)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024, 1)


def onnx_worker(path: str, threads: int, rows: np.ndarray, labels: np.ndarray, options: dict) -> dict:
    from ids_lightning.edge.runtime import session

    ort = session(path, threads)

    def predict(x):
        return ort.run(None, {"features": x})[0]

    result = measure(predict, rows, **options)
    result["accuracy"] = float((predict(rows).argmax(1) == labels).mean()) if labels is not None else None
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def bench_rows(run_dir: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The run's saved test rows and labels, or (a folder without them, like ``examples/``)
    uniform rows of the model's width: speed and memory do not depend on the values, accuracy
    is then not measured."""
    shape = Preprocessor.load(run_dir / "preprocess.json").input_shape
    saved = run_dir / "bench_rows.npy"
    if os.path.lexists(saved):
        rows, labels = _array(saved), _array(run_dir / "bench_labels.npy")
        if rows.dtype != np.float32 or rows.shape[1:] != shape or labels.shape != rows.shape[:1]:
            raise DataError(
                f"{saved}: {rows.dtype} rows of shape {list(rows.shape)} and labels of shape {list(labels.shape)}; "
                f"preprocess.json makes float32 rows of shape {['n', *shape]} and one label each"
            )
        return rows, labels, "bench_rows.npy: preprocessed test rows saved by the run"
    rows = np.random.default_rng(0).random((4096, *shape), dtype=np.float32)
    return rows, None, "synthetic: uniform rows in [0, 1] (no bench_rows.npy in the folder; accuracy not measured)"


def _array(path: Path) -> np.ndarray:
    """A NumPy array file of plain numbers (never a pickle): a pipe, a folder or another file is
    one DataError naming it."""
    regular_file(path, "NumPy file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: not a NumPy array of numbers ({err})") from err


def _child(worker: str, args: tuple, queue) -> None:
    """Entry point of a measurement process: report the result or the error, never hang."""
    try:
        module, _, name = worker.partition(":")
        queue.put(getattr(importlib.import_module(module), name)(*args))
    except BaseException as err:
        queue.put({"error": f"{type(err).__name__}: {err}"})


def in_child(worker, *args) -> dict:
    """Run one measurement in a fresh process, so its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(f"{worker.__module__}:{worker.__name__}", args, queue))
    process.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except Exception:
            if not process.is_alive():
                raise RuntimeError(f"benchmark process died (exit code {process.exitcode})") from None
    process.join()
    if "error" in result:
        raise RuntimeError(f"{worker.__name__} failed: {result['error']}")
    return result


def bench(
    run_dir: str | Path,
    batches: list[int],
    threads: list[int],
    latency_calls: int = 2000,
    seconds: float = 1.0,
    extra: Callable[[dict], list[dict]] | None = None,
) -> dict:
    """Measure every ONNX model of ``run_dir``; ``extra(context)`` may add rows measured by other
    engines on the same rows (context: run_dir, rows, labels, threads, options)."""
    run_dir = Path(run_dir)
    rows, labels, source = bench_rows(run_dir)
    options = {"batches": batches, "latency_calls": latency_calls, "seconds": seconds}
    results, skipped = [], {}
    for name, file in MODELS.items():
        path = run_dir / file
        if not path.is_file():
            continue
        if name == "onnx_int8" and (why := int8_unsupported()):
            skipped[name] = why
            continue
        for n in threads:
            measured = in_child(onnx_worker, str(path), n, rows, labels, options)
            results.append({"engine": name, "threads": n, "model_bytes": path.stat().st_size, **measured})
    if extra is not None:
        context = {"run_dir": run_dir, "rows": rows, "labels": labels, "threads": threads, "options": options}
        results.extend(extra(context))
    environment = runtime()
    choice = engine_choice(results, skipped)
    if environment["emulator"]:
        choice["why"] = f"emulated, so not a board's choice: {choice['why']}"
    report = {
        "run": str(run_dir),
        "machine": _machine(),
        "cores": cpu_count(),
        "runtime": environment,
        "rows": len(rows),
        "rows_source": source,
        # flows per model input: latency is per flow scored with its window of that many flows
        "window": 1 if rows.ndim == 2 else rows.shape[1],
        "results": results,
        "skipped": skipped,
        "ratios": _ratios(results),
        "engine_choice": choice,
    }
    atomic_write_json(run_dir / "bench.json", report)
    return report


def runtime() -> dict:
    """What the figures depend on besides the machine: a user's figures from a board are comparable
    when these match. ``emulator`` is what the caller declares in ``IDS_EMULATOR`` (``make
    edge-arm64`` sets it): emulated timings are not a board's."""
    import onnxruntime

    build = onnxruntime.get_build_info() if hasattr(onnxruntime, "get_build_info") else None
    return {
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_build": build,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "emulator": os.environ.get("IDS_EMULATOR") or None,
    }


# int8 replaces fp32 only where it is this much faster at batch 1 and at the largest batch: a
# margin against the noise of a shared box (docs/deployment.md: int8 or fp32, per machine)
INT8_MIN_SPEEDUP = 1.2
# ... and loses at most this much accuracy on the bench rows (where they are labelled)
INT8_MAX_ACCURACY_LOSS = 0.005


def engine_choice(results: list[dict], skipped: dict | None = None) -> dict:
    """Which model this machine should run, from the figures just measured: int8 where it is
    faster than fp32 at every thread count measured, at batch 1 and at the largest batch, without
    losing accuracy; fp32 otherwise (the detector's default, ``--model model.onnx``)."""
    by = {(r["engine"], r["threads"]): r for r in results}
    reasons, int8_wins = [], True
    for (engine, threads), fp32 in sorted(by.items()):
        int8 = by.get(("onnx_int8", threads))
        if engine != "onnx_fp32" or int8 is None:
            continue
        biggest = max(fp32["rows_per_s"], key=int)
        latency = fp32["batch1_p50_us"] / int8["batch1_p50_us"]
        throughput = int8["rows_per_s"][biggest] / fp32["rows_per_s"][biggest]
        wins = latency >= INT8_MIN_SPEEDUP and throughput >= INT8_MIN_SPEEDUP
        reason = (
            f"{threads} thread(s): int8 is {latency:.2f}x fp32's speed at batch 1, {throughput:.2f}x at batch {biggest}"
        )
        if fp32["accuracy"] is not None and int8["accuracy"] is not None:
            loss = fp32["accuracy"] - int8["accuracy"]
            wins = wins and loss <= INT8_MAX_ACCURACY_LOSS
            reason += f", accuracy {int8['accuracy']:.4f} vs {fp32['accuracy']:.4f}"
        int8_wins = int8_wins and wins
        reasons.append(reason)
    if not reasons:
        return {"model": "model.onnx", "why": (skipped or {}).get("onnx_int8", "no int8 model measured")}
    chosen = "model.int8.onnx" if int8_wins else "model.onnx"
    rule = (
        f"int8 when at least {INT8_MIN_SPEEDUP}x faster at both and no more than {INT8_MAX_ACCURACY_LOSS} accuracy lost"
    )
    return {"model": chosen, "why": "; ".join(reasons) + f" ({rule})"}


def _ratios(results: list[dict]) -> dict:
    """fp32 ONNX vs torch eager (batch-1 p50 and largest-batch throughput), per thread count."""
    by = {(r["engine"], r["threads"]): r for r in results}
    out = {}
    for (engine, threads), row in by.items():
        torch_row = by.get(("torch_eager", threads))
        if engine == "torch_eager" or torch_row is None:
            continue
        biggest = max(row["rows_per_s"], key=int)
        out[f"{engine}_vs_torch/threads_{threads}/batch1_speedup"] = round(
            torch_row["batch1_p50_us"] / row["batch1_p50_us"], 2
        )
        out[f"{engine}_vs_torch/threads_{threads}/batch{biggest}_speedup"] = round(
            row["rows_per_s"][biggest] / torch_row["rows_per_s"][biggest], 2
        )
    return out


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({platform.machine()}, {platform.system()})"


def format_table(report: dict) -> str:
    batches = list(report["results"][0]["rows_per_s"]) if report["results"] else []
    header = [
        "engine",
        "threads",
        "p50 µs",
        "p95 µs",
        "p99 µs",
        *[f"rows/s @{b}" for b in batches],
        "RSS MB",
        "size KB",
        "acc",
    ]
    lines = [header]
    for r in report["results"]:
        size = f"{r['model_bytes'] / 1024:.0f}" if "model_bytes" in r else "-"
        lines.append(
            [
                r["engine"],
                str(r["threads"]),
                f"{r['batch1_p50_us']:.0f}",
                f"{r['batch1_p95_us']:.0f}",
                f"{r['batch1_p99_us']:.0f}",
                *[f"{r['rows_per_s'][b]:,}" for b in batches],
                f"{r['peak_rss_mb']:.0f}",
                size,
                "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}",
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    window = report.get("window", 1)
    text = [f"{report['machine']}, {report['cores']} cores, {report['rows']} rows ({report['rows_source']})"]
    if "runtime" in report:
        rt = report["runtime"]
        text.append(
            f"onnxruntime {rt['onnxruntime']} ({rt['onnxruntime_build'] or 'build unknown'}), numpy {rt['numpy']}, "
            f"Python {rt['python']}"
        )
        if rt["emulator"]:
            text.append(f"EMULATED ({rt['emulator']}): these timings are not a board's")
    if window > 1:
        text.append(f"each row is one flow scored with its window of {window} flows")
    text += ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in lines]
    text += [f"{k}: {v}" for k, v in report["ratios"].items()]
    text += [f"{engine} not measured: {why}" for engine, why in report.get("skipped", {}).items()]
    if "engine_choice" in report:
        choice = report["engine_choice"]
        text.append(f"engine for this machine: --model {choice['model']} ({choice['why']})")
    return "\n".join(text)


def thread_counts(values: list[int | str]) -> list[int]:
    """Thread counts with ``all`` as every core, each once."""
    return sorted({cpu_count() if t == "all" else int(t) for t in values})
