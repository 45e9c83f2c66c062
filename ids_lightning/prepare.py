"""Convert IoT-23 Zeek logs / CSV exports or BoT-IoT CSVs to Parquet, chunk by chunk.

``python -m ids_lightning.prepare FILE... --output DIR`` parses each file in chunks of
``--chunk-rows`` rows and appends each chunk to ``DIR/<name>.parquet``, so memory stays bounded
by the chunk size however large the input (the full IoT-23 is about 325 million flows). The
DataModules read the Parquet files exactly as they read the originals (list them in
``dataset.files``); preparing once saves parsing time on every run.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ids_lightning.formats import bot_iot, parquet, zeek

log = logging.getLogger(__name__)
FORMATS = ("auto", "iot23", "bot_iot")


def detect_format(path: Path) -> str:
    try:
        zeek.detect(path)
        return "iot23"
    except Exception:
        return "bot_iot"


def prepare(
    inputs: list[Path],
    output: Path,
    fmt: str = "auto",
    layout: str = "auto",
    chunk_rows: int = 500_000,
    bad_rows: str = "error",
    engine: str = "auto",
) -> list[dict]:
    """Write one Parquet file per input; return ``{input, output, format, rows, skipped}`` per file."""
    output.mkdir(parents=True, exist_ok=True)
    results = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=False) as progress:
        files = progress.add_task("files", total=len(inputs))
        for path in inputs:
            kind = detect_format(path) if fmt == "auto" else fmt
            name = zeek.capture_name(path) if kind == "iot23" else path.name.removesuffix(".gz").removesuffix(".csv")
            target = output / f"{name}.parquet"
            rows = progress.add_task(f"{path.name} rows", total=None)
            if kind == "iot23":
                chunks = zeek.iter_tables(path, chunk_rows, bad_rows, engine)
            else:
                chunks = bot_iot.iter_tables(path, layout, None, chunk_rows, bad_rows, engine)

            def counted(chunks=chunks, rows=rows):
                for chunk in chunks:
                    progress.advance(rows, len(chunk))
                    yield chunk

            counts = parquet.write(counted(), target, kind)
            progress.advance(files)
            results.append({"input": str(path), "output": str(target), "format": kind, **counts})
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, required=True, help="folder for the .parquet files")
    parser.add_argument("--format", choices=FORMATS, default="auto")
    parser.add_argument("--layout", default="auto", help="BoT-IoT layout (auto, full, full5pc, best10, reduced)")
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--bad-rows", choices=("error", "skip"), default="error")
    args = parser.parse_args(argv)
    results = prepare(args.inputs, args.output, args.format, args.layout, args.chunk_rows, args.bad_rows)
    console = Console()
    for row in results:
        console.print(f"{row['input']} -> {row['output']}: {row['rows']:,} rows, {row['skipped']} skipped")
    return results


if __name__ == "__main__":
    main()
