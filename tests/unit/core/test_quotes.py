"""A stray quote in a CSV spoils its own line only, in both engines: every other row is read, and
the bad one is counted with its line number (also past the csv module's 128 KB field limit)."""

from __future__ import annotations

import numpy as np
import pytest

from ids_lightning.core.delimited import EngineError, Layout, read_chunks

NAMES = ["a", "b", "label"]


def layout() -> Layout:
    return Layout(NAMES, ",", 1, ("",), frozenset({"a", "b"}), quoted=True)


def write(tmp_path, stray: str):
    rows = [f"{i},{i * 2},{'benign' if i % 2 else 'attack'}" for i in range(500)]
    rows[10] = stray
    path = tmp_path / "flows.csv"
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("stray", ['1,"2,x', '"' + "y" * 200_000 + ",2,x"])
def test_a_stray_quote_costs_one_line(tmp_path, stray):
    chunks = list(read_chunks(write(tmp_path, stray), layout(), chunk_rows=100, bad_rows="skip", engine="python"))
    lines = np.concatenate([chunk.line for chunk in chunks])
    skipped = sorted({line for chunk in chunks for _, line, _ in chunk.skipped})
    assert skipped == [12] and len(lines) == 499 and 12 not in lines  # line 1 is the header


def test_the_arrow_engine_hands_a_runaway_quote_to_the_line_reader(tmp_path):
    """pyarrow reads on inside an open quote to its block's end; the reader then says so and
    the spec reads the file line by line (``DatasetSpec.read_file``)."""
    with pytest.raises(EngineError, match=r"flows\.csv:12: a quote left open"):
        list(read_chunks(write(tmp_path, '1,"2,x'), layout(), chunk_rows=100, bad_rows="skip", engine="arrow"))


def test_a_spec_reads_a_csv_with_a_stray_quote_to_every_other_row(tmp_path):
    from ids_lightning.datasets import get_spec

    header = "flgs,proto,pkts,bytes,dur,mean,stddev,sum,min,max,rate,category"
    rows = [f"e,tcp,{i},680,1.5,0.1,0.01,0.2,0.05,0.3,0.6,{'Normal' if i % 3 else 'DoS'}" for i in range(500)]
    rows[40] = rows[40].replace("e,tcp", 'e,"tcp', 1)
    path = tmp_path / "sample.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    table = get_spec("bot_iot").read_file(path, bad_rows="skip")
    assert len(table) == 499 and [line for _, line, _ in table.skipped] == [42]
