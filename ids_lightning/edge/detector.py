"""Score a flow file with a run folder's preprocessing and ONNX model, streaming, no torch.

``python -m ids_lightning.cli.detect --run RUN_DIR --input FILE --output alerts.jsonl`` reads a
file of the run's dataset through its spec (NSL-KDD rows, IoT-23 Zeek logs or CSV exports,
BoT-IoT CSVs, ...) in chunks (memory does not grow with the file), writes one JSON line per
record (``line``, ``pred``, ``prob``, ``label``, ``unknown`` and the spec's flow id columns;
with the run's ``novelty.json``, also ``novelty``) and prints a summary. ``unknown`` is true when
a categorical value was never seen in training, or when the novelty score exceeds the threshold
calibrated on benign validation rows. Malformed lines never stop
the stream: they are counted and listed with their line numbers in the summary. A run trained
on windows scores each flow with its source host's preceding flows, kept across chunks for at
most ``--max-hosts`` hosts (:mod:`ids_lightning.edge.windows`).
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import (
    OutputError,
    TruncatedFileError,
    atomic_path,
    atomic_write_json,
    readable_twice,
    same_file,
)
from ids_lightning.core.metrics import macro_scores
from ids_lightning.core.novelty import novelty_scores
from ids_lightning.core.spec import OTHER
from ids_lightning.core.table import RawTable
from ids_lightning.edge.runtime import Run, load_run
from ids_lightning.edge.windows import DEFAULT_MAX_HOSTS, HostWindows

MAX_LISTED_SKIPS = 1000


def true_labels(table: RawTable, run: Run) -> np.ndarray:
    """Each record's class under the run's task (None where the file has no label); labels the
    run folded into ``other`` at training time are folded the same way."""
    labels = run.spec.task_labels(table, run.preprocessor.task)
    classes = run.class_names
    if OTHER in classes:
        labels = np.array([v if v is None or v in classes else OTHER for v in labels], dtype=object)
    return labels


def detect(
    run_dir: str | Path,
    input_path: str | Path,
    output: str | Path,
    model: str = "model.onnx",
    chunk_rows: int = 20_000,
    threads: int | None = None,
    progress: bool = True,
    max_hosts: int = DEFAULT_MAX_HOSTS,
) -> dict:
    """Score ``input_path`` (a file, a pipe, or ``-`` for standard input: a stream is read once
    into a temporary copy, :func:`~ids_lightning.core.fileio.readable_twice`); write alerts to
    ``output`` and ``<output>.summary.json``; return the summary."""
    options = (model, chunk_rows, threads, progress, max_hosts)
    with readable_twice(input_path) as readable:  # the summary names the input, not a copy
        return _detect_file(run_dir, readable, output, *options, name=str(input_path))


def _detect_file(run_dir, input_path, output, model, chunk_rows, threads, progress, max_hosts, name: str) -> dict:
    """:func:`detect` of a file that can be read twice (``name``: the input as given). A file
    cut short (a truncated archive) ends the stream: the summary says so under ``error`` and
    counts what was scored. The output appears whole or not at all (a temporary file beside it,
    renamed at the end): a refusal or a full disk leaves an earlier one as it was."""
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, not {chunk_rows}")
    input_path, output = Path(input_path), Path(output)
    if same_file(output, input_path):
        raise DataError(f"--output {output} is the input file (it would be overwritten)")
    run = load_run(run_dir, model, threads)
    spec = run.spec
    try:
        fmt = spec.sniff(input_path)
    except (EOFError, OSError, zlib.error) as err:  # cut or unreadable before its first lines end
        raise DataError(f"{input_path}: cannot read its first lines ({type(err).__name__}: {err})") from err
    windows = HostWindows(run.preprocessor, spec, max_hosts) if run.preprocessor.window > 1 else None
    transform = windows.transform if windows is not None else run.preprocessor.transform
    classes = run.class_names
    index = {name: i for i, name in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    predicted, skipped, skipped_count = Counter(), [], 0
    records = unknown_count = unknown_category_count = outside_classes = 0
    started, error = time.perf_counter(), None
    # the alerts and the summary are written beside their names and renamed at the end, the
    # summary first: a failure (a full disk) leaves an earlier pair as it was
    try:
        with atomic_path(output) as partial:
            with open(partial, "w", encoding="utf-8") as out:
                # the line-by-line engine: it reports an undecodable or over-long line as a bad row,
                # where the fast engine gives up on the whole file
                chunks = spec.iter_tables(
                    input_path, chunk_rows=chunk_rows, bad_rows="skip", engine="python", require_labels=False
                )
                tables = iter(chunks)
                while True:
                    try:
                        table = next(tables, None)
                    except TruncatedFileError as err:
                        error = str(err)
                        break
                    if table is None:
                        break
                    skipped_count += len(table.skipped)
                    skipped.extend(table.skipped[: max(0, MAX_LISTED_SKIPS - len(skipped))])
                    if len(table) == 0:
                        continue
                    x, unseen_category = transform(table)
                    probabilities = run.score(x)
                    novelty = novelty_scores(probabilities) if run.novelty is not None else None
                    unknown = (
                        unseen_category | (novelty > run.novelty.threshold) if novelty is not None else unseen_category
                    )
                    broken = ~np.isfinite(probabilities).all(axis=1)
                    if broken.any():
                        raise DataError(
                            f"{run.model_path} gives non-finite probabilities for {int(broken.sum())} records "
                            f"(first at {input_path}:{int(table.line[np.argmax(broken)])}): the model is broken"
                        )
                    best = probabilities.argmax(axis=1)
                    labels = true_labels(table, run)
                    ids = [(name, table.meta[name]) for name in spec.id_columns if name in table.meta]
                    for i in range(len(table)):
                        record = {
                            "line": int(table.line[i]),
                            "pred": classes[best[i]],
                            "prob": round(float(probabilities[i, best[i]]), 6),
                            "label": labels[i],
                            "unknown": bool(unknown[i]),
                        }
                        if novelty is not None:
                            record["novelty"] = round(float(novelty[i]), 6)
                        for name, values in ids:
                            value = values[i]
                            record[name] = value.item() if isinstance(value, np.generic) else value
                        out.write(json.dumps(record, allow_nan=False) + "\n")
                    predicted.update(classes[b] for b in best)
                    unknown_count += int(unknown.sum())
                    unknown_category_count += int(unseen_category.sum())
                    known = np.array([label in index for label in labels])
                    outside_classes += int(sum(1 for label in labels if label is not None and label not in index))
                    if known.any():
                        truth = np.array([index[label] for label in labels[known]])
                        np.add.at(confusion, (truth, best[known]), 1)
                    records += len(table)
                    if progress:
                        rate = records / max(time.perf_counter() - started, 1e-9)
                        print(
                            f"\rscored {records:,} records ({skipped_count:,} skipped), {rate:,.0f} records/s",
                            end="",
                            file=sys.stderr,
                        )
            seconds = time.perf_counter() - started
            summary = {
                "input": name,
                "format": fmt,
                "run": str(run.folder),
                "model": model,
                "records": records,
                "skipped": skipped_count,
                "skipped_lines": [{"line": line, "reason": reason} for _, line, reason in skipped],
                "predicted": dict(predicted),
                "alerts": {k: v for k, v in predicted.items() if not spec.is_benign(k)},
                "unknown_category_records": unknown_category_count,
                "unknown_records": unknown_count,
                **({"novelty_threshold": run.novelty.threshold} if run.novelty is not None else {}),
                "window": run.preprocessor.window,
                **({"hosts_tracked": windows.tracked, "hosts_evicted": windows.evicted} if windows is not None else {}),
                "seconds": round(seconds, 3),
                "records_per_s": round(records / seconds, 1) if seconds > 0 else None,
            }
            if error:
                summary["error"] = error
            labelled = int(confusion.sum())
            if labelled:
                scores = macro_scores(confusion)
                summary |= {
                    "labelled_records": labelled,
                    "labels_outside_classes": outside_classes,
                    "accuracy": scores["acc"],
                    "f1_macro": scores["f1_macro"],
                }
            atomic_write_json(output.with_name(output.name + ".summary.json"), summary)
    except OutputError as err:
        done = f" after {records:,} records were scored" if records else ""
        raise OutputError(err.path, err.error, done) from err
    finally:
        if progress and records:  # ends the progress line, before a summary or an error
            print(file=sys.stderr)
    return summary


def print_summary(summary: dict) -> None:
    print(
        f"{summary['records']:,} records scored from {summary['input']} ({summary['format']}) "
        f"in {summary['seconds']:.1f} s ({summary['records_per_s']:,} records/s)"
    )
    print("alerts per class: " + (", ".join(f"{k} {v:,}" for k, v in sorted(summary["alerts"].items())) or "none"))
    print(f"records with a category unseen in training: {summary['unknown_category_records']:,}")
    if "novelty_threshold" in summary:
        print(
            f"unknown records (an unseen category, or novelty above {summary['novelty_threshold']:.4f}): "
            f"{summary['unknown_records']:,}"
        )
    if "hosts_tracked" in summary:
        print(
            f"windows of {summary['window']} flows: {summary['hosts_tracked']:,} source hosts tracked at the end, "
            f"{summary['hosts_evicted']:,} forgotten (least recently seen, over --max-hosts)"
        )
    print(f"skipped lines: {summary['skipped']:,}")
    for item in summary["skipped_lines"][:20]:
        print(f"  line {item['line']}: {item['reason']}")
    if summary["skipped"] > 20:
        print(f"  ... all listed (up to {MAX_LISTED_SKIPS}) in the summary JSON")
    if "accuracy" in summary:
        print(
            f"labelled records: {summary['labelled_records']:,}; accuracy {summary['accuracy']:.4f}, "
            f"macro-F1 {summary['f1_macro']:.4f}"
            + (
                f"; {summary['labels_outside_classes']:,} labels outside the run's classes"
                if summary["labels_outside_classes"]
                else ""
            )
        )
    if "error" in summary:
        print(f"stopped early: {summary['error']}; {summary['records']:,} records were scored")
