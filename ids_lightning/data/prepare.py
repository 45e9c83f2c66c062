"""Convert flow files of any dataset (IoT-23 Zeek logs / CSV exports, BoT-IoT CSVs, NSL-KDD) to
Parquet, chunk by chunk.

``python -m ids_lightning.cli.prepare FILE... --output DIR`` finds each file's dataset from its spec
(or ``--dataset``), parses it in chunks of ``--chunk-rows`` rows and appends each chunk to
``DIR/<name>.parquet``, so memory stays bounded by the chunk size however large the input (the
full IoT-23 is about 325 million flows). The DataModule reads the Parquet files exactly as it
reads the originals (list them in ``dataset.files``); preparing once saves parsing on every run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ids_lightning.core import parquet
from ids_lightning.core.delimited import EngineError
from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import output_folder, readable_twice
from ids_lightning.core.files import data_stem
from ids_lightning.datasets import get_spec, sniff_dataset

log = logging.getLogger(__name__)


def prepare(
    inputs: list[Path],
    output: Path,
    dataset: str = "auto",
    read_options: dict | None = None,
    chunk_rows: int = 500_000,
    bad_rows: str = "error",
    engine: str = "auto",
) -> list[dict]:
    """Write one Parquet file per input; return ``{input, output, format, rows, skipped}`` per file.
    Two inputs that would write the same file are refused before anything is written."""
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows (--chunk-rows) must be at least 1, not {chunk_rows}")
    targets = {}
    for path in inputs:
        target = output / f"{data_stem(path)}.parquet"
        if target in targets:
            raise DataError(f"{targets[target]} and {path} would both be written to {target}: rename one")
        targets[target] = path
    output_folder(output)
    results = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=False) as progress:
        files = progress.add_task("files", total=len(inputs))
        for target, path in targets.items():
            with readable_twice(path) as readable:  # a pipe is read once, into a copy that keeps its name
                spec = sniff_dataset(readable)[0] if dataset == "auto" else get_spec(dataset)
                options = {k: v for k, v in (read_options or {}).items() if k in spec.read_options}
                rows = progress.add_task(f"{Path(path).name} rows", total=None)

                def counted(engine, readable=readable, spec=spec, options=options, rows=rows):
                    progress.reset(rows)
                    for chunk in spec.iter_tables(
                        readable, chunk_rows=chunk_rows, bad_rows=bad_rows, engine=engine, **options
                    ):
                        progress.advance(rows, len(chunk))
                        yield chunk

                try:
                    counts = parquet.write(counted(engine), target, spec.name, path)
                except EngineError as err:  # nothing was written yet (Parquet goes to a temp file first)
                    if engine != "auto":
                        raise
                    log.warning("%s; reading it line by line", err)
                    counts = parquet.write(counted("python"), target, spec.name, path)
            progress.advance(files)
            results.append({"input": str(path), "output": str(target), "format": spec.name, **counts})
    return results
