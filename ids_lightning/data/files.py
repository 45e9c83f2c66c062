"""Finding data files from config patterns, and parsing each file once per process."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from ids_lightning.errors import MissingDataError
from ids_lightning.table import RawTable


def resolve_files(patterns: list[str] | str, data_dir: Path, what: str) -> list[Path]:
    """Expand glob patterns (relative to ``data_dir`` unless absolute), in file-name order, so that
    rows (and seeded splits) do not depend on how the patterns were written; one clear error if
    none match."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    found: list[Path] = []
    for pattern in patterns:
        base = Path(pattern).expanduser()
        matches = sorted(base.parent.glob(base.name)) if base.is_absolute() else sorted(data_dir.glob(pattern))
        found.extend(p for p in matches if p.is_file() and p not in found)
    found.sort(key=lambda p: (p.name, str(p)))
    if not found:
        raise MissingDataError(
            f"no {what} files match {patterns} under {data_dir}. Put the files there (see the README, "
            "section Data) or point paths.data_dir / $IDS_DATA_DIR at the folder that holds them."
        )
    return found


def read_cached(reader: Callable[..., RawTable], path: Path, **options) -> RawTable:
    """``reader(path, **options)``, parsed once per process per file version (sweeps and tests
    build many datamodules). Callers must not modify the table in place."""
    stat = path.stat()
    return _cached(reader, path, stat.st_mtime_ns, stat.st_size, tuple(sorted(options.items())))


@lru_cache(maxsize=32)
def _cached(reader, path, mtime_ns, size, options) -> RawTable:
    return reader(path, **dict(options))
