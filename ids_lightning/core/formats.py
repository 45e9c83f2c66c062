"""Run-folder files carry a format number; a reader takes every older format the project has
written (a file without the key is format 0, from before numbering) and refuses a newer one with
a message, rather than misreading it."""

from __future__ import annotations

from pathlib import Path

from ids_lightning.core.errors import PreprocessStateError


def check_format(document: dict, path: str | Path, newest: int, key: str = "format") -> int:
    """``document``'s format (0 where it has none); refused (a :class:`PreprocessStateError`, a
    DataError) when newer than ``newest`` or not a JSON object at all."""
    if not isinstance(document, dict):
        raise PreprocessStateError(f"{path}: not a JSON object")
    written = document.get(key, 0)
    if isinstance(written, bool) or not isinstance(written, int) or written < 0:
        raise PreprocessStateError(f"{path}: {key} must be a whole number, not {written!r}")
    if written > newest:
        raise PreprocessStateError(
            f"{path} is format {written}, written by a newer ids-lightning; this one reads formats up to "
            f"{newest}: upgrade it (pip install -U ids-lightning) to read this run folder"
        )
    return written
