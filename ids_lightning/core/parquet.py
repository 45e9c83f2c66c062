"""Parsed tables as Parquet: written chunk by chunk, read back to the same :class:`RawTable`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import atomic_path, regular_file
from ids_lightning.core.table import RawTable

_FORMAT_KEY = b"ids_lightning"


def _arrow_table(table: RawTable):
    import pyarrow as pa

    columns = {f"num:{n}": table.numeric[:, j] for j, n in enumerate(table.numeric_names)}
    columns |= {f"cat:{n}": table.categorical[:, j].astype(str) for j, n in enumerate(table.categorical_names)}
    columns |= {"label": table.labels.astype(str), "line": table.line, "source": table.source.astype(str)}
    for key, values in table.meta.items():
        columns[f"meta:{key}"] = (
            values
            if values.dtype != object
            else np.array([None if v is None else str(v) for v in values], dtype=object)
        )
    return pa.table(columns)


def write(tables: Iterable[RawTable], path: str | Path, fmt: str, source: str | Path = "the input") -> dict:
    """Write chunks (read from ``source``) to ``path`` (via a temp file, renamed at the end);
    return counts."""
    import pyarrow.parquet as pq

    writer, rows, skipped, names = None, 0, [], None
    with atomic_path(path) as tmp:
        for table in tables:
            skipped.extend(table.skipped)
            if len(table) == 0:
                continue
            arrow = _arrow_table(table)
            if writer is None:
                names = (table.numeric_names, table.categorical_names)
                writer = pq.ParquetWriter(tmp, arrow.schema, compression="zstd")
            writer.write_table(arrow)
            rows += len(table)
        if writer is None:
            raise DataError(
                f"{source}: no data rows" + (f" ({len(skipped)} malformed rows skipped)" if skipped else "")
            )
        writer.add_key_value_metadata(
            {
                _FORMAT_KEY: json.dumps(
                    {"format": fmt, "numeric": names[0], "categorical": names[1], "skipped": skipped}
                ).encode()
            }
        )
        writer.close()
    return {"rows": rows, "skipped": len(skipped)}


def _format_info(parquet, path: str | Path, fmt: str) -> dict:
    """The project's metadata of ``parquet`` (the open ``pyarrow.parquet.ParquetFile`` of
    ``path``, a file written by :func:`write`); refuse one of another format."""
    raw = (parquet.metadata.metadata or {}).get(_FORMAT_KEY)
    if raw is None:
        raise DataError(f"{path}: not a Parquet file written by `python -m ids_lightning.cli.prepare`")
    info = json.loads(raw)
    if info["format"] != fmt:
        raise DataError(f"{path}: holds {info['format']} flows, not {fmt}")
    return info


def row_groups(path: str | Path) -> list[int]:
    """Rows of each row group of ``path`` (one per chunk that ``prepare`` wrote), from its footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(regular_file(path, "Parquet file")).metadata
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0][:160]})") from err
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def read(path: str | Path, fmt: str, row_group: int | None = None, skip_meta: tuple[str, ...] = ()) -> RawTable:
    """Read a file written by :func:`write` (or one of its row groups), without the metadata
    keys ``skip_meta``; refuse one of another dataset format."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(regular_file(path, "Parquet file"))
        info = _format_info(parquet, path, fmt)
        columns = [name for name in parquet.schema_arrow.names if name.removeprefix("meta:") not in skip_meta]
        whole = row_group is None
        data = parquet.read(columns=columns) if whole else parquet.read_row_group(row_group, columns=columns)
    except (pa.ArrowException, OSError) as err:  # a cut or foreign file: name it
        raise DataError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0][:160]})") from err
    column = {name: data.column(name).to_numpy(zero_copy_only=False) for name in data.column_names}
    n = data.num_rows
    return RawTable(
        numeric=np.column_stack([column[f"num:{c}"] for c in info["numeric"]]).reshape(n, len(info["numeric"])),
        categorical=np.column_stack([column[f"cat:{c}"].astype(object) for c in info["categorical"]]).reshape(
            n, len(info["categorical"])
        ),
        labels=column["label"].astype(object),
        numeric_names=list(info["numeric"]),
        categorical_names=list(info["categorical"]),
        line=column["line"].astype(np.int64),
        source=column["source"].astype(object),
        # a file's skip records belong to its whole, not to each row group
        skipped=[tuple(s) for s in info["skipped"]] if row_group in (None, 0) else [],
        meta={
            name[5:]: values.astype(object) if values.dtype.kind in "OUS" else values
            for name, values in column.items()
            if name.startswith("meta:")
        },
    )
