"""The NSL-KDD spec and parser on the real files, on crafted bad rows and on fuzzed lines."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ids_lightning.core.errors import DataError, MalformedRowError
from ids_lightning.core.fileio import open_text
from ids_lightning.datasets import nsl_kdd
from tests.helpers import GOOD, NSL_KDD_TEST, NSL_KDD_TRAIN

SPEC = nsl_kdd.SPEC


def write(tmp_path, lines, name="rows.txt"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_real_row_counts_match_sources(data_dir):
    assert len(nsl_kdd.read_file(NSL_KDD_TRAIN)) == 125973
    assert len(nsl_kdd.read_file(NSL_KDD_TEST)) == 22544


def test_fast_reader_equals_line_parser_on_real_file(data_dir):
    fast = nsl_kdd.read_file(NSL_KDD_TEST)
    with open_text(NSL_KDD_TEST) as handle:
        exact = nsl_kdd.parse_lines(handle, str(NSL_KDD_TEST))
    for field in ("numeric", "categorical", "labels", "line", "source"):
        assert np.array_equal(getattr(fast, field), getattr(exact, field)), field
    assert fast.numeric.shape == (22544, 38) and fast.categorical.shape == (22544, 3)


def test_test_only_attacks_map_to_their_family(data_dir):
    train = set(nsl_kdd.read_file(NSL_KDD_TRAIN).labels)
    test_table = nsl_kdd.read_file(NSL_KDD_TEST)
    unseen = sorted(set(test_table.labels) - train)
    assert len(unseen) == 17
    names, first = np.unique(test_table.labels.astype(str), return_index=True)
    families = SPEC.task_labels(test_table.take(first[np.isin(names, unseen)]), "family")
    assert set(families) <= {"DoS", "Probe", "R2L", "U2R"}
    assert dict(zip(unseen, families))["mscan"] == "Probe"
    assert dict(zip(unseen, families))["apache2"] == "DoS"
    binary = SPEC.task_labels(test_table, "binary")
    assert (binary == "normal").sum() == 9711


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (GOOD.replace(",normal,21", ""), "expected 43 comma-separated fields"),
        (GOOD.replace("SF,215", "SF,abc"), "'src_bytes': 'abc' is not a number"),
        (GOOD.replace("SF,215", "SF,nan"), "is not finite"),
        (GOOD.replace("SF,215", "SF,-5"), "is negative"),
        (GOOD.replace("normal", "martian"), "unknown attack name 'martian'"),
        ("", "found 1"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, bad_line, reason):
    path = write(tmp_path, [GOOD, GOOD, bad_line, GOOD])
    with pytest.raises(MalformedRowError, match=reason) as info:
        nsl_kdd.read_file(path)
    assert info.value.line == 3 and info.value.path == str(path)
    assert f"{path}:3:" in str(info.value)


def test_first_bad_line_is_reported_whatever_its_kind(tmp_path):
    path = write(tmp_path, [GOOD, GOOD.replace("SF,215", "SF,x"), GOOD + ",extra"])
    with pytest.raises(MalformedRowError) as info:
        nsl_kdd.read_file(path)
    assert info.value.line == 2


def test_skip_counts_every_bad_row_and_keeps_the_rest(tmp_path):
    lines = [GOOD, GOOD.replace("SF,215", "SF,x"), GOOD, GOOD + ",extra", GOOD.replace("tcp", "udp")]
    path = write(tmp_path, lines)
    table = nsl_kdd.read_file(path, bad_rows="skip")
    assert len(table) == 3
    assert [line for _, line, _ in table.skipped] == [2, 4]
    assert list(table.line) == [1, 3, 5]
    assert table.categorical[2, 0] == "udp"


def test_gzip_crlf_and_optional_difficulty(tmp_path):
    path = tmp_path / "rows.txt.gz"
    with gzip.open(path, "wt", newline="") as handle:
        handle.write(GOOD + "\r\n" + GOOD.rsplit(",", 1)[0] + "\r\n")
    table = nsl_kdd.read_file(path)
    assert len(table) == 2 and list(table.labels) == ["normal", "normal"]
    assert table.numeric[0, nsl_kdd.NUMERIC.index("dst_bytes")] == 45076


def test_spec_reads_in_chunks_what_the_whole_file_reader_reads(data_dir):
    chunks = list(SPEC.iter_tables(NSL_KDD_TEST, chunk_rows=5000))
    assert [len(c) for c in chunks] == [5000, 5000, 5000, 5000, 2544]
    whole = SPEC.read_file(NSL_KDD_TEST)
    assert np.array_equal(np.concatenate([c.numeric for c in chunks]), whole.numeric)
    assert np.array_equal(np.concatenate([c.line for c in chunks]), whole.line)


def test_sniff_accepts_nsl_kdd_rows_and_refuses_others(tmp_path, data_dir):
    assert SPEC.sniff(NSL_KDD_TRAIN) == "nsl_kdd"
    assert SPEC.sniff(write(tmp_path, [GOOD.rsplit(",", 2)[0]], "unlabelled.txt")) == "nsl_kdd"
    assert SPEC.sniff(write(tmp_path, ["garbage", GOOD], "late.txt")) == "nsl_kdd"
    with pytest.raises(DataError, match="no NSL-KDD row"):
        SPEC.sniff(write(tmp_path, ["a,b,c"], "other.csv"))


def test_task_labels_keep_unlabelled_records_unlabelled():
    table = nsl_kdd.parse_lines([GOOD, GOOD.rsplit(",", 2)[0]], "mixed", require_label=False)
    assert SPEC.task_labels(table, "binary").tolist() == ["normal", None]
    assert SPEC.task_labels(table, "family").tolist() == ["normal", None]


line_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=120)


@settings(max_examples=200)
@given(lines=st.lists(st.one_of(line_text, st.just(GOOD), line_text.map(lambda t: GOOD[:40] + t)), max_size=12))
def test_every_fuzzed_line_is_parsed_or_counted(lines):
    table = nsl_kdd.parse_lines(lines, "fuzz", bad_rows="skip", require_label=False)
    assert len(table) + len(table.skipped) == len(lines)
    assert set(table.line.tolist()).isdisjoint(line for _, line, _ in table.skipped)
