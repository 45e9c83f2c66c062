"""Names of a package imported from their submodules on first use (PEP 562), so that a command
that needs one light submodule does not import the heavy ones (Lightning, torch)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_attributes(package: str, homes: dict[str, str]) -> Callable[[str], object]:
    """The package's ``__getattr__``: ``homes`` maps each name to the submodule that defines it."""

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return __getattr__
