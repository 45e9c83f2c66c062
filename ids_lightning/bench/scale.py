"""Training on more rows than fit in memory: rows per second and peak memory against dataset size.

``python -m ids_lightning.bench.scale --rows N [N ...]`` builds, per N, an IoT-23 dataset of N
rows from the shared captures: each capture goes through ``prepare`` once, then the training
captures are written again and again (each copy a capture of its own: ``-r<k>`` appended to its
capture name, source and flow ids, timestamps shifted) until there are N rows. The validation
capture (42-1) and the test captures (20-1, 21-1, Torii) appear once, so evaluation stays the
same size while training grows. Then, each in a fresh process, it trains one epoch out of core
(``dataset.in_memory=false``) and, for N up to ``--in-memory-max`` rows, also in memory, and
records ``rows_per_s`` (training rows per second of the epoch), ``peak_rss_mb``,
``peak_device_mb`` (GPU only) and seconds per stage (``setup``: reading, scanning and
preprocessing; ``train``: the epoch; ``test``). Writes ``outputs/bench/scale.json``.

The default is 20 million rows (about 480 MB of Parquet; built in about 80 s); 100000000 is
about a third of the full IoT-23: about 2.4 GB of Parquet and, on 2 CPU cores, about four hours
for the epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ids_lightning.bench.common import peak_rss_mb
from ids_lightning.core import parquet
from ids_lightning.core.errors import ConfigError, MissingDataError, exit_status
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.core.table import RawTable, concat
from ids_lightning.training.config import PROJECT_ROOT

VAL_CAPTURE = "CTU-IoT-Malware-Capture-42-1"
TEST_CAPTURES = ("CTU-IoT-Malware-Capture-20-1", "CTU-IoT-Malware-Capture-21-1")
ROW_GROUP = 500_000  # rows per chunk, as `prepare` writes them
ROWS_PER_FILE = 2_000_000
SHIFT_SECONDS = 10_000_000.0  # between two copies of a capture (about 115 days)


def copy_of(table: RawTable, k: int) -> RawTable:
    """Copy ``k`` of a prepared capture: a capture, source and flow ids of its own, later times."""
    meta = dict(table.meta)
    for key in ("uid", "capture"):
        if key in meta:
            meta[key] = np.char.add(meta[key].astype(str), f"-r{k}").astype(object)
    if "ts" in meta:
        meta["ts"] = meta["ts"].astype(np.float64) + k * SHIFT_SECONDS
    source = np.char.add(table.source.astype(str), f"#r{k}").astype(object)
    return RawTable(
        table.numeric, table.categorical, table.labels, table.numeric_names, table.categorical_names,
        table.line, source, [], meta,
    )  # fmt: skip


def build(rows: int, folder: Path, data_dir: Path) -> dict:
    """The dataset of ``rows`` rows in ``folder`` (kept and reused when it is complete)."""
    from ids_lightning.data.prepare import prepare

    done = folder / "dataset.json"
    if done.is_file() and json.loads(done.read_text())["rows"] == rows:
        return json.loads(done.read_text())
    base = folder / "base"
    captures = sorted((data_dir / "iot23").glob("*.conn.log.labeled*")) + sorted(
        (data_dir / "iot23" / "csv_exports").glob("*.labeled.csv*")
    )
    if not captures:
        raise MissingDataError(f"no IoT-23 captures under {data_dir / 'iot23'} (set --data-dir or $IDS_DATA_DIR)")
    prepared = prepare(captures, base, dataset="iot23")
    tables = [parquet.read(row["output"], "iot23") for row in prepared]
    training = concat([t for t in tables if t.meta["capture"][0] not in (VAL_CAPTURE, *TEST_CAPTURES)])
    total = sum(len(t) for t in tables)
    if rows < total:
        raise ConfigError(f"--rows must be at least the {total:,} rows of the shared captures")
    for old in folder.glob("copies_*.parquet"):
        old.unlink()
    copies, written, k = [], 0, 0
    while total + written < rows:
        group, in_group = [], 0
        while in_group < ROW_GROUP and total + written + in_group < rows:
            k += 1
            part = copy_of(training, k)
            part = part.take(np.arange(min(len(part), rows - total - written - in_group)))
            group.append(part)
            in_group += len(part)
        copies.append(concat(group))
        written += in_group
        if sum(len(c) for c in copies) >= ROWS_PER_FILE or total + written >= rows:
            parquet.write(copies, folder / f"copies_{len(list(folder.glob('copies_*.parquet'))):03d}.parquet", "iot23")
            copies = []
    info = {
        "rows": rows,
        "copies": k,
        "parquet_mb": round(sum(p.stat().st_size for p in folder.rglob("*.parquet")) / 2**20, 1),
    }
    atomic_write_json(done, info)
    return info


def worker(folder: Path, mode: str, model: str, batch_size: int) -> dict:
    """One epoch of training and a test, in this (fresh) process: seconds per stage, memory."""
    import lightning as L
    import torch

    from ids_lightning.training.config import compose, instantiate, model_from_config
    from ids_lightning.training.console import quiet

    quiet()
    started = time.perf_counter()
    overrides = [
        "dataset=iot23",
        f"model={model}",
        "dataset.files=[base/*.parquet,copies_*.parquet]",
        "dataset.val_split=by_capture",
        f"dataset.val_partitions=[{VAL_CAPTURE}]",
        f"dataset.in_memory={'false' if mode == 'out_of_core' else 'true'}",
        f"dataset.batch_size={batch_size}",
    ]
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose(overrides, run_dir, data_dir=folder)
        datamodule = instantiate(cfg.dataset, output_dir=None)
        datamodule.setup("fit")
        setup = time.perf_counter() - started
        trained = (
            sum(c.rows for c in datamodule.stream[0]) if datamodule.stream else len(datamodule.tensors["train"][1])
        )
        module = model_from_config(cfg, datamodule.preprocessor, datamodule.class_weights)
        trainer = L.Trainer(
            max_epochs=1, accelerator="auto", devices=1, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
            default_root_dir=run_dir,
        )  # fmt: skip
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        mark = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        train = time.perf_counter() - mark
        mark = time.perf_counter()
        scores = trainer.test(module, datamodule=datamodule, verbose=False)[0]
        test = time.perf_counter() - mark
    return {
        "mode": mode,
        "train_rows": trained,
        "rows_per_s": trained / train,
        "peak_rss_mb": peak_rss_mb(),
        "peak_device_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
        "seconds": {"setup": setup, "train": train, "test": test},
        "test/acc": scores["test/acc"],
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }


def measure(folder: Path, mode: str, model: str, batch_size: int) -> dict:
    command = [sys.executable, "-m", "ids_lightning.bench.scale", "--worker", mode, "--folder", str(folder),
               "--model", model, "--batch-size", str(batch_size)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT)
    if result.returncode:
        raise RuntimeError(f"{mode} on {folder} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[20_000_000], help="dataset sizes (default: %(default)s)"
    )
    parser.add_argument("--in-memory-max", type=int, default=2_000_000,
                        help="also train in memory up to this many rows (default: %(default)s)")  # fmt: skip
    parser.add_argument("--model", default="cnn_lstm", help="ids_lightning/conf/model entry (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=1024, help="training batch (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "scale_data",
                        help="where the datasets are built (kept between runs; default: %(default)s)")  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data root with iot23/ (default: $IDS_DATA_DIR or data/)"
    )
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "scale.json")
    parser.add_argument("--worker", choices=("out_of_core", "in_memory"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.folder, args.worker, args.model, args.batch_size)
        print(json.dumps(result))
        return result
    data_dir = args.data_dir or Path(os.environ.get("IDS_DATA_DIR", "data"))
    report: dict = {"model": args.model, "batch_size": args.batch_size, "runs": []}
    console = Console()
    for rows in args.rows:
        folder = args.work_dir / f"rows_{rows}"
        mark = time.perf_counter()
        info = build(rows, folder, data_dir)
        console.print(f"{rows:,} rows in {folder} ({info['parquet_mb']} MB, {time.perf_counter() - mark:.0f} s)")
        modes = ["out_of_core", *(["in_memory"] if rows <= args.in_memory_max else [])]
        for mode in modes:
            result = {"rows": rows, **measure(folder, mode, args.model, args.batch_size)}
            report["runs"].append(result)
            atomic_write_json(args.output, report)  # what is measured so far survives a kill
            console.print(f"  {mode}: {result['rows_per_s']:,.0f} rows/s, peak RSS {result['peak_rss_mb']:,.0f} MB")
    report["summary"] = summary(report["runs"])
    atomic_write_json(args.output, report)
    table = Table("rows", "mode", "rows/s", "peak RSS MB", "setup s", "train s", "test s", "test acc")
    for run in report["runs"]:
        seconds = run["seconds"]
        times = [f"{seconds[stage]:.0f}" for stage in ("setup", "train", "test")]
        table.add_row(f"{run['rows']:,}", run["mode"], f"{run['rows_per_s']:,.0f}", f"{run['peak_rss_mb']:,.0f}",
                      *times, f"{run['test/acc']:.4f}")  # fmt: skip
    console.print(table)
    console.print(report["summary"])
    return report


def summary(runs: list[dict]) -> dict:
    """The targets' ratios: out-of-core vs in-memory rows/s on the same rows, and peak RSS of the
    largest out-of-core run over the smallest's."""
    out = {}
    streamed = sorted((r for r in runs if r["mode"] == "out_of_core"), key=lambda r: r["rows"])
    for run in runs:
        if run["mode"] == "in_memory":
            twin = next(r for r in streamed if r["rows"] == run["rows"])
            out[f"out_of_core_vs_in_memory_rows_per_s@{run['rows']}"] = round(twin["rows_per_s"] / run["rows_per_s"], 3)
    if len(streamed) > 1:
        key = f"peak_rss_ratio_{streamed[-1]['rows']}_vs_{streamed[0]['rows']}"
        out[key] = round(streamed[-1]["peak_rss_mb"] / streamed[0]["peak_rss_mb"], 3)
    return out


if __name__ == "__main__":
    sys.exit(exit_status(main))
