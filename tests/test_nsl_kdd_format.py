"""The NSL-KDD parser on the real files and on crafted bad rows."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from ids_lightning.formats import nsl_kdd

from ids_lightning.core.errors import MalformedRowError
from ids_lightning.core.fileio import open_text
from tests.conftest import NSL_KDD_TEST, NSL_KDD_TRAIN

GOOD = (
    "0,tcp,http,SF,215,45076,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,1,1,0.00,0.00,0.00,0.00,1.00,0.00,0.00,"
    "0,0,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,normal,21"
)


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
    families = nsl_kdd.task_labels(np.array(unseen, dtype=object), "family")
    assert set(families) <= {"DoS", "Probe", "R2L", "U2R"}
    assert dict(zip(unseen, families))["mscan"] == "Probe"
    assert dict(zip(unseen, families))["apache2"] == "DoS"
    binary = nsl_kdd.task_labels(test_table.labels, "binary")
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
