"""Finding data files from config patterns, and parsing each file once per process."""

from __future__ import annotations

import glob
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from ids_lightning.core.errors import MissingDataError
from ids_lightning.core.table import RawTable


def find_files(pattern: str, data_dir: Path) -> list[Path]:
    """Files matching one glob pattern (relative to ``data_dir`` unless absolute), in name order;
    a plain name also finds its gzipped copy (``KDDTrain+.txt`` or ``KDDTrain+.txt.gz``)."""
    base = Path(pattern).expanduser()
    root, relative = (base.parent, base.name) if base.is_absolute() else (data_dir, pattern)
    matches = [p for p in sorted(root.glob(relative)) if p.is_file()]
    if not matches and not glob.has_magic(pattern):
        matches = [p for p in sorted(root.glob(f"{relative}.gz")) if p.is_file()]
    return matches


def resolve_files(patterns: list[str] | str, data_dir: Path, what: str, hint: str = "") -> list[Path]:
    """Expand patterns in file-name order, so that rows (and seeded splits) do not depend on how
    the patterns were written; one clear error if none match."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    found: list[Path] = []
    for pattern in patterns:
        found.extend(p for p in find_files(pattern, data_dir) if p not in found)
    found.sort(key=lambda p: (p.name, str(p)))
    if not found:
        raise MissingDataError(
            f"no {what} files match {patterns} under {data_dir}. {hint + ' ' if hint else ''}Put the files "
            "there or point paths.data_dir / $IDS_DATA_DIR at the folder that holds them (README, Data)."
        )
    return found


def read_cached(reader: Callable[..., RawTable], path: Path, **options) -> RawTable:
    """``reader(path, **options)``, parsed once per process per file version (sweeps and tests
    build many datamodules). Callers must not modify the table in place."""
    stat = path.stat()
    return _cached(reader, path, stat.st_mtime_ns, stat.st_size, json.dumps(options, sort_keys=True))


@lru_cache(maxsize=32)
def _cached(reader, path, mtime_ns, size, options) -> RawTable:
    return reader(path, **json.loads(options))


def data_stem(path: str | Path) -> str:
    """A data file's name without its format suffixes: ``CTU-IoT-Malware-Capture-34-1`` from
    ``CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz`` (IoT-23 capture names, Parquet names)."""
    name = Path(path).name
    for suffix in (".gz", ".parquet", ".csv", ".txt", ".labeled", ".log", ".conn"):
        name = name.removesuffix(suffix)
    return name
