"""Format sniffing reads a file's head with the line limit of every other line: a 2 MiB first line
is one error naming it, for every dataset, never a read of the whole line."""

from __future__ import annotations

import pytest

from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import MAX_LINE_CHARS
from ids_lightning.datasets import SPECS, sniff_dataset


@pytest.mark.parametrize(
    "first", ["#separator \\x09" + "x" * (2 << 20), "uid,proto," + "y" * (2 << 20), "0," * (1 << 20)]
)
def test_an_endless_first_line_is_refused_by_every_spec(tmp_path, first):
    path = tmp_path / "flows.log"
    path.write_text(first + "\nrest\n")
    for spec in SPECS.values():
        with pytest.raises(DataError, match=f"longer than {MAX_LINE_CHARS:,}"):
            spec.sniff(path)
    with pytest.raises(DataError):
        sniff_dataset(path)
