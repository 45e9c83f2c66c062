"""The project's own exceptions (every data problem a user can hit names the file and line),
and how a command ends on one: one line on stderr and status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
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


REFUSED = 2  # the exit status of input or settings the project refuses
# the project's refusals: bad data or settings, a file that cannot be read or written
REFUSALS = (DataError, ConfigError, OSError)


def exit_status(
    command: Callable[[list[str] | None], int | None], argv: list[str] | None = None, name: str = ""
) -> int:
    """A command's exit status: what it returns when that is a status (an int; 0 for anything
    else, such as a bench's results), or ``REFUSED`` with one line on stderr for a refusal of the
    project's (bad data or settings, a file that cannot be read or written). Anything else is a
    bug and keeps its traceback."""
    name = name or Path(sys.argv[0]).name
    try:
        status = command(argv)
    except REFUSALS as err:
        return refused(name, err)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) and not isinstance(status, bool) else 0


def refused(name: str, err: Exception) -> int:
    """The one line a refusal prints on stderr, and its exit status."""
    print(f"{name}: error: {err}", file=sys.stderr)
    return REFUSED
