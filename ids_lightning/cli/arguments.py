"""Argument types the commands share: a bad value is argparse's one-line usage error (status
2) before any file is read."""

from __future__ import annotations

import argparse
import os


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def thread_count(text: str) -> int:
    """At least 1 and at most four per core: more only queue behind each other."""
    value, limit = positive(text), 4 * (os.cpu_count() or 1)
    if value > limit:
        raise argparse.ArgumentTypeError(f"must be at most {limit} (four per core of this machine), not {value}")
    return value


def thread_count_or_all(text: str) -> int | str:
    """A thread count, or ``all``: every core."""
    return text if text == "all" else thread_count(text)


def explained_features(text: str) -> int:
    """``--explain K``: features per alert, at least 1."""
    from ids_lightning.core.explain import check_top

    try:
        return check_top(int(text))
    except ValueError as err:
        message = str(err) if "--explain" in str(err) else f"must be a whole number, not {text}"
        raise argparse.ArgumentTypeError(message) from None
