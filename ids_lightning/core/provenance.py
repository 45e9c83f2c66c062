"""What made a run folder and every model in it: ``provenance.json`` and the ONNX metadata.

The code (package version, git commit, uncommitted changes), the environment (Python, torch,
Lightning, numpy, onnxruntime; host and device), the data (the sha256 of each file read) and the
composed config's hash, with the run's start and end. Torch-free: the detector reads it back, from
the model's metadata, into every alert.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from ids_lightning.core.fileio import atomic_write_json, read_json_object
from ids_lightning.core.formats import check_format

FILE = "provenance.json"
FORMAT = 1  # provenance.json's format: readers refuse a newer one
# ONNX metadata keys (beside ids_lightning.class_names): what the detector shows per alert
METADATA = {"version": "ids_lightning.version", "commit": "ids_lightning.commit", "dirty": "ids_lightning.dirty",
            "config_sha256": "ids_lightning.config_sha256", "data_sha256": "ids_lightning.data_sha256"}  # fmt: skip
PACKAGES = ("torch", "lightning", "numpy", "onnxruntime", "onnx", "lightgbm")
CHECKOUT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def code_state() -> dict:
    """The package version, and the git commit with a dirty flag when the package runs from a
    checkout (None for an installed wheel)."""
    from ids_lightning import __version__

    commit = dirty = None
    if (CHECKOUT / ".git").exists():
        try:
            git = ["git", "-C", str(CHECKOUT)]
            commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
            commit = commit.stdout.strip()
            status = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, check=True, timeout=10)  # fmt: skip
            dirty = bool(status.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            commit = dirty = None
    return {"version": __version__, "commit": commit, "dirty": dirty}


def environment(device: str | None = None) -> dict:
    """Python and the packages that shape the numbers, the host and the device."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "packages": versions,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": device,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else [],
    }


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """A file's sha256, computed once per process while the file stays as it is."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def data_files(paths: list[Path]) -> dict[str, str]:
    """Each file read, by name, to its sha256."""
    return {Path(p).name: file_sha256(Path(p)) for p in sorted(set(paths), key=lambda p: Path(p).name)}


def digest(values: dict[str, str] | list[str]) -> str:
    """One sha256 over names and hashes (a run's data; an ensemble's members)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def config_sha256(config: dict) -> str:
    """The composed config's hash: its keys and values, canonical JSON (the caller leaves out
    where things are: folders and the data root)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def record(config: dict, files: list[Path], device: str | None, **extra) -> dict:
    """A fresh ``provenance.json`` (started now, not yet ended)."""
    data = data_files(files)
    return {
        "format": FORMAT,
        **code_state(),
        "config_sha256": config_sha256(config),
        "data": data,
        "data_sha256": digest(data),
        "environment": environment(device),
        "started_at": now(),
        "ended_at": None,
        **extra,
    }


def write(folder: Path, provenance: dict) -> dict:
    atomic_write_json(Path(folder) / FILE, provenance)
    return provenance


def finish(folder: Path) -> None:
    """Mark the run in ``folder`` as ended now."""
    provenance = read(folder)
    if provenance is not None:
        write(folder, {**provenance, "ended_at": now()})


def read(folder: Path) -> dict | None:
    """A folder's ``provenance.json`` (None where the folder predates it)."""
    path = Path(folder) / FILE
    if not os.path.lexists(path):
        return None
    provenance = read_json_object(path, "a run's provenance")
    check_format(provenance, path, FORMAT)
    return provenance


def onnx_metadata(provenance: dict | None) -> dict[str, str]:
    """The ONNX metadata entries of a model made in a folder with ``provenance``."""
    if not provenance:
        return {}
    return {key: json.dumps(provenance.get(name)) for name, key in METADATA.items()}


# what each metadata value must look like to reach an alert (a model file is input like any other)
_SHAPES = {
    "version": re.compile(r"[0-9A-Za-z.+!_-]{1,64}"),
    "commit": re.compile(r"[0-9a-f]{40}"),
    "config_sha256": re.compile(r"[0-9a-f]{64}"),
    "data_sha256": re.compile(r"[0-9a-f]{64}"),
}


def from_onnx_metadata(custom: dict[str, str]) -> dict:
    """What a model's metadata says made it: None for each key a model from before lacks, or
    whose value is not what this project writes (a hex hash, a version, true or false)."""
    out = {}
    for name, key in METADATA.items():
        try:
            value = json.loads(custom[key]) if key in custom else None
        except (json.JSONDecodeError, RecursionError):
            value = None
        if name == "dirty":
            out[name] = value if isinstance(value, bool) else None
        else:
            out[name] = value if isinstance(value, str) and _SHAPES[name].fullmatch(value) else None
    return out
