"""One spec per dataset (torch-free), and the registry that data, ``prepare`` and the detector use.

A new dataset is one module here that defines ``SPEC``, an instance of a
:class:`~ids_lightning.core.spec.DatasetSpec` subclass (it is found by its place), one
``ids_lightning/conf/dataset/<name>.yaml`` and its tests; :func:`register` adds one from outside the package.
"""

from __future__ import annotations

import importlib
import pkgutil
import zlib
from pathlib import Path

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import regular_file
from ids_lightning.core.spec import DatasetSpec

SPECS: dict[str, DatasetSpec] = {}
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    _spec = importlib.import_module(f"{__name__}.{_module}").SPEC
    SPECS[_spec.name] = _spec


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset (a user's own spec) under its name; a taken name is an error."""
    if spec.name in SPECS and SPECS[spec.name] is not spec:
        raise ConfigError(f"a dataset named {spec.name!r} is already registered")
    SPECS[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    if name not in SPECS:
        raise ConfigError(f"unknown dataset {name!r}; known: {sorted(SPECS)}")
    return SPECS[name]


def sniff_dataset(path: str | Path) -> tuple[DatasetSpec, str]:
    """The spec whose files look like ``path``, and the format variant; one clear error if none
    (a path that is not a regular file is one reason, not one per dataset)."""
    regular_file(path, "flow file")
    reasons = []
    for spec in SPECS.values():
        try:
            return spec, spec.sniff(path)
        except (DataError, UnicodeDecodeError, EOFError, OSError, zlib.error) as err:
            reasons.append(f"{spec.title}: {err}")
    raise DataError(f"{path}: not a file of any known dataset:\n  " + "\n  ".join(reasons))
