"""The project's own exceptions: every data problem a user can hit names the file and line."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Base class for problems with input data."""


class MissingDataError(DataError, FileNotFoundError):
    """An expected data file is not where the config says it is."""


class MalformedRowError(DataError):
    """A row of a data file cannot be parsed; carries the file and 1-based line number."""

    def __init__(self, path: str | Path, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason} (set dataset.bad_rows=skip to skip and count such rows)")


class PreprocessStateError(DataError):
    """A preprocess.json file is missing keys, has wrong types or contradicts itself."""


class ConfigError(ValueError):
    """A setting (config key or command-line option) that the project refuses, named."""


class RunInUseError(ConfigError):
    """Another process holds the run folder."""


def check_choice(key: str, value: object, choices: tuple | list | dict) -> None:
    """One wording for every "must be one of" error, naming the config key."""
    if value not in choices:
        raise ConfigError(f"{key} must be one of {list(choices)}, not {value!r}")
