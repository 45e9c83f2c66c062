"""IoT-23 parsing (both Zeek variants, CSV exports, Parquet) and the DataModule's splits."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ids_lightning.core import parquet
from ids_lightning.core.errors import DataError, MalformedRowError, MissingDataError
from ids_lightning.datasets import iot23
from tests.helpers import DATA_DIR
from tests.helpers import datamodule as make_datamodule
from tools.chaos.lab import reordered

IOT23 = DATA_DIR / "iot23"
ZEEK_FILES = {
    "CTU-IoT-Malware-Capture-34-1": (
        23145,
        {"benign": 1923, "DDoS": 14394, "C&C": 6706, "PartOfAHorizontalPortScan": 122},
    ),
    "CTU-IoT-Malware-Capture-42-1": (4426, {"benign": 4420, "FileDownload": 3, "C&C-FileDownload": 3}),
    "CTU-Honeypot-Capture-4-1": (452, {"benign": 452}),
    "CTU-Honeypot-Capture-5-1": (1374, {"benign": 1374}),
}
CSV_FILES = {
    "CTU-IoT-Malware-Capture-44-1": (237, {"benign": 211, "C&C": 14, "C&C-FileDownload": 11, "DDoS": 1}),
    "CTU-IoT-Malware-Capture-20-1": (3209, {"benign": 3193, "C&C-Torii": 16}),
    "CTU-IoT-Malware-Capture-21-1": (3286, {"benign": 3272, "C&C-Torii": 14}),
    "CTU-Honeypot-Capture-7-1": (130, {"benign": 130}),
}


def read(path, **options):
    """A whole file with its flow ids, as the detector and ``prepare`` see it."""
    return iot23.SPEC.read_file(path, keep_ids=True, **options)


def path_of(capture):
    if capture in ZEEK_FILES:
        return IOT23 / f"{capture}.conn.log.labeled.gz"
    return IOT23 / "csv_exports" / f"{capture}.labeled.csv.gz"


def assert_same_table(a, b):
    assert a.numeric_names == b.numeric_names and a.categorical_names == b.categorical_names
    np.testing.assert_array_equal(a.numeric, b.numeric)
    for field in ("categorical", "labels", "line"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    for key in ("detailed_label", "uid", "capture"):
        assert np.array_equal(a.meta[key], b.meta[key]), key


@pytest.mark.parametrize("capture", [*ZEEK_FILES, *CSV_FILES])
@pytest.mark.parametrize("engine", ["arrow", "python"])
def test_real_files_parse_to_the_counts_in_sources(data_dir, capture, engine):
    rows, labels = {**ZEEK_FILES, **CSV_FILES}[capture]
    table = read(path_of(capture), engine=engine)
    assert len(table) == rows and not table.skipped
    assert Counter(table.meta["detailed_label"].tolist()) == labels
    assert set(table.meta["capture"]) == {capture}
    assert table.numeric.shape == (rows, len(iot23.NUMERIC)) and np.isfinite(table.numeric).all()


def test_engines_agree_on_a_real_file(data_dir):
    path = path_of("CTU-IoT-Malware-Capture-34-1")
    assert_same_table(read(path, engine="arrow"), read(path, engine="python"))


def test_tab_separated_variant_parses_to_the_same_table(data_dir, tmp_path):
    """The other public variant: last three fields tab-separated, last one named det_label."""
    original = path_of("CTU-IoT-Malware-Capture-34-1")
    with gzip.open(original, "rt") as handle:
        text = handle.read()
    variant = text.replace("   ", "\t").replace("detailed-label", "det_label")
    path = tmp_path / "CTU-IoT-Malware-Capture-34-1.conn.log.labeled"
    path.write_text(variant)
    for engine in ("arrow", "python"):
        table = read(path, engine=engine)
        reference = read(original, engine=engine)
        reference.source[:] = str(path)
        assert_same_table(table, reference)


def test_features_never_identify_the_capture(data_dir):
    table = read(path_of("CTU-IoT-Malware-Capture-44-1"))
    names = " ".join(table.numeric_names + table.categorical_names)
    for forbidden in ("uid", "ts", "orig_h", "resp_h"):
        assert forbidden not in names.split()
    assert {"uid", "ts", "id.orig_h", "id.resp_h"} <= set(table.meta)


def test_history_string_becomes_letter_counts():
    features = iot23.history_features(np.array(["ShADadttfF", None, "^hA"], dtype=object))
    names = iot23.NUMERIC[-len(features[0]) :]
    row = dict(zip(names, features[0]))
    assert row["history_orig_S"] == 1 and row["history_resp_t"] == 2 and row["history_length"] == 10
    assert features[1].sum() == 0
    assert dict(zip(names, features[2]))["history_flipped"] == 1


def test_parquet_round_trip_equals_the_direct_parse(data_dir, tmp_path):
    path = path_of("CTU-IoT-Malware-Capture-42-1")
    direct = read(path)
    written = parquet.write(iot23.SPEC.iter_tables(path, chunk_rows=1000), tmp_path / "x.parquet", "iot23")
    assert written == {"rows": 4426, "skipped": 0}
    assert_same_table(parquet.read(tmp_path / "x.parquet", "iot23"), direct)
    with pytest.raises(DataError, match="holds iot23 flows, not bot_iot"):
        parquet.read(tmp_path / "x.parquet", "bot_iot")


HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\t" + "\t".join(iot23.FIELDS[:-3]) + "\ttunnel_parents   label   detailed-label\n"
    "#types\t" + "\t".join(["string"] * 20) + "\tset[string]   string   string\n"
)
ROW = (
    "1.5\tCabc\t10.0.0.1\t1234\t10.0.0.2\t80\ttcp\thttp\t0.5\t10\t20\tSF\t-\t-\t0\tShADadfF\t5\t300\t4\t200"
    "\t-   Malicious   DDoS"
)


def zeek_file(tmp_path, rows, footer=True):
    path = tmp_path / "x.conn.log.labeled"
    path.write_text(HEADER + "".join(r + "\n" for r in rows) + ("#close\t2020-01-01-00-00-00\n" if footer else ""))
    return path


@pytest.mark.parametrize("engine", ["arrow", "python"])
@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (ROW.rsplit("\t", 3)[0], "expected 21 fields"),  # truncated line
        (ROW.replace("\t0.5\t", "\tabc\t"), "'duration': 'abc' is not a number"),
        (ROW.replace("\t0.5\t", "\tnan\t"), "'duration': nan is not a valid count"),
        (ROW.replace("\t0.5\t", "\tinf\t"), "not a valid count"),
        (ROW.replace("\t80\t", "\t70000\t"), "'id.resp_p': 70000.0 is not a valid port"),
        (ROW.replace("Malicious", "Weird"), "unknown label 'Weird'"),
        (ROW.replace("   Malicious", " Malicious"), "should hold 3 values"),
    ],
)
def test_bad_rows_name_file_and_line_or_are_counted(tmp_path, engine, bad, reason):
    path = zeek_file(tmp_path, [ROW, bad, ROW])
    with pytest.raises(MalformedRowError, match=reason) as info:
        read(path, engine=engine)
    assert info.value.line == 9 and info.value.path == str(path)
    table = read(path, bad_rows="skip", engine=engine)
    assert len(table) == 2 and list(table.line) == [8, 10]
    assert [(s[1], reason in s[2]) for s in table.skipped] == [(9, True)]


@pytest.mark.parametrize("engine", ["arrow", "python"])
def test_header_without_rows_and_wrong_fields_are_clear_errors(tmp_path, engine):
    with pytest.raises(DataError, match="no data rows"):
        read(zeek_file(tmp_path, []), engine=engine)
    broken = tmp_path / "broken.conn.log.labeled"
    broken.write_text(HEADER.replace("\thistory\t", "\thistoire\t") + ROW + "\n")
    with pytest.raises(DataError, match=r"broken.conn.log.labeled:6: field list lacks \['history'\]"):
        read(broken, engine=engine)
    stranger = tmp_path / "stranger.csv"
    stranger.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"stranger\.csv:1: neither a Zeek log"):
        read(stranger, engine=engine)


def test_labels_are_case_insensitive(tmp_path):
    path = zeek_file(
        tmp_path, [ROW, ROW.replace("Malicious   DDoS", "benign   -"), ROW.replace("Malicious", "MALICIOUS")]
    )
    table = read(path)
    assert table.labels.tolist() == ["malicious", "benign", "malicious"]
    assert table.meta["detailed_label"].tolist() == ["DDoS", "benign", "DDoS"]


values = st.fixed_dictionaries(
    {
        "orig_p": st.integers(0, 65535),
        "resp_p": st.integers(0, 65535),
        "proto": st.sampled_from(["tcp", "udp", "icmp"]),
        "service": st.sampled_from(["-", "http", "dns", "ssl"]),
        "duration": st.one_of(st.just("-"), st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.6f}")),
        "bytes": st.one_of(st.just("-"), st.integers(0, 2**40).map(str)),
        "history": st.text("ShADadFfRrTtWw^", max_size=12).map(lambda h: h or "-"),
        "label": st.sampled_from(["benign", "Benign", "Malicious", "malicious"]),
        "detail": st.sampled_from(["-", "DDoS", "C&C", "PartOfAHorizontalPortScan"]),
    }
)


def render(v):
    return "\t".join(
        [
            "1.0",
            "Cx",
            "1.1.1.1",
            str(v["orig_p"]),
            "2.2.2.2",
            str(v["resp_p"]),
            v["proto"],
            v["service"],
            v["duration"],
            v["bytes"],
            "0",
            "SF",
            "-",
            "-",
            "0",
            v["history"],
            "1",
            "40",
            "1",
            "40",
            f"-   {v['label']}   {v['detail']}",
        ]
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(values, min_size=1, max_size=20))
def test_zeek_line_parser_round_trips_generated_rows(tmp_path, rows):
    path = zeek_file(tmp_path, [render(v) for v in rows])
    for engine in ("arrow", "python"):
        table = read(path, engine=engine)
        assert len(table) == len(rows)
        column = {name: table.numeric[:, j] for j, name in enumerate(table.numeric_names)}
        assert column["resp_port"].tolist() == [v["resp_p"] for v in rows]
        assert column["orig_bytes"].tolist() == [0 if v["bytes"] == "-" else int(v["bytes"]) for v in rows]
        assert column["history_length"].tolist() == [0 if v["history"] == "-" else len(v["history"]) for v in rows]
        assert table.labels.tolist() == [v["label"].lower() for v in rows]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    garbage=st.lists(
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=60),
        min_size=1,
        max_size=8,
    )
)
def test_every_line_is_parsed_or_counted(tmp_path, garbage):
    path = zeek_file(tmp_path, [ROW, *garbage, ROW])
    data_lines = sum(1 for g in garbage if not g.startswith("#")) + 2
    for engine in ("arrow", "python"):
        table = read(path, bad_rows="skip", engine=engine)
        assert len(table) + len(table.skipped) == data_lines


def datamodule(data_dir, **kwargs):
    return make_datamodule("iot23", data_dir, **kwargs)


def test_by_capture_keeps_captures_apart(data_dir):
    dm = datamodule(data_dir)
    counts = dm.stats["class_counts"]
    assert sum(counts["test"].values()) == 3209 + 3286
    assert counts["test"] == {"benign": 3193 + 3272, "malicious": 30}
    assert sum(counts["train"].values()) + sum(counts["val"].values()) == 23145 + 4426 + 452 + 1374 + 237 + 130


def test_unknown_test_capture_and_no_files_are_clear_errors(data_dir, tmp_path):
    with pytest.raises(DataError, match=r"test partitions \['Nope'\] are not among the capture values read"):
        datamodule(data_dir, test_partitions=["Nope"])
    with pytest.raises(MissingDataError, match="no IoT-23 files match"):
        datamodule(tmp_path)


def test_detailed_task_folds_rare_and_unseen_labels_into_other(data_dir):
    dm = datamodule(data_dir, task="detailed", min_class_count=50)
    assert dm.class_names == ["benign", "C&C", "DDoS", "PartOfAHorizontalPortScan", "other"]
    assert set(dm.stats["folded_into_other"]) == {"C&C-FileDownload", "FileDownload"}
    assert dm.stats["class_counts"]["test"]["other"] == 30  # C&C-Torii never appears in training


def test_random_split_is_stratified(data_dir):
    dm = datamodule(data_dir, split="random")
    sizes = {s: sum(c.values()) for s, c in dm.stats["class_counts"].items()}
    assert sizes["train"] + sizes["val"] + sizes["test"] == 36259
    assert abs(sizes["test"] / 36259 - 0.15) < 0.002


def test_prepared_parquet_feeds_the_datamodule_like_the_originals(data_dir, tmp_path):
    from ids_lightning.data.prepare import prepare

    inputs = sorted(IOT23.glob("*.gz")) + sorted((IOT23 / "csv_exports").glob("*.gz"))
    results = prepare(inputs, tmp_path / "parquet", chunk_rows=5000)
    assert [r["rows"] for r in results] == [452, 1374, 23145, 4426, 130, 3209, 3286, 237]
    direct = datamodule(data_dir)
    prepared = datamodule(data_dir, files=[str(tmp_path / "parquet" / "*.parquet")])
    assert prepared.stats["class_counts"] == direct.stats["class_counts"]
    for stage in ("train", "val", "test"):
        assert all(a.equal(b) for a, b in zip(prepared.tensors[stage], direct.tensors[stage]))


def _head(path, lines: int) -> list[str]:
    with gzip.open(path, "rt", newline="") as handle:
        return [next(handle) for _ in range(lines)]


def joined_captures(tmp_path) -> tuple[Path, list[Path]]:
    """Two real captures joined with ``cat``, the second written with its columns in another order
    (sources and destinations swapped, the rest reversed) and after a ``#close`` footer, as
    rotated or concatenated logs come; and the two parts as files of their own."""
    first = _head(IOT23 / "CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz", 308)
    second = _head(IOT23 / "CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz", 308)
    order = [2, 5, 4, 3, 1, 0, *range(19, 5, -1), 20]  # the joined label field stays last
    parts = [[*first, "#close\t2019-01-11-05-34-45\n"], reordered(second, order)]
    paths = []
    for number, lines in enumerate(parts):
        paths.append(tmp_path / f"part{number}.conn.log.labeled")
        paths[-1].write_text("".join(lines))
    joined = tmp_path / "joined.conn.log.labeled"
    joined.write_text("".join(parts[0] + parts[1]))
    return joined, paths


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_a_new_zeek_layout_mid_file_switches_the_reader(tmp_path, engine):
    """Rows after a second #fields header are read in its column order: the joined file holds
    exactly the rows of its two parts (each read on its own, and the reordered part equal to
    the capture as written), with every line number true."""
    joined, (first, second) = joined_captures(tmp_path)
    table = read(joined, engine=engine)
    parts = [read(first, engine=engine), read(second, engine=engine)]
    original = read(tmp_path_capture(tmp_path, "CTU-IoT-Malware-Capture-34-1", 308), engine=engine)
    assert len(table) == 600 and not table.skipped
    np.testing.assert_array_equal(parts[1].numeric, original.numeric)
    assert np.array_equal(parts[1].meta["id.orig_h"], original.meta["id.orig_h"])
    np.testing.assert_array_equal(table.numeric, np.concatenate([p.numeric for p in parts]))
    for key in ("id.orig_h", "id.resp_h", "uid", "detailed_label"):
        assert np.array_equal(table.meta[key], np.concatenate([p.meta[key] for p in parts])), key
    assert table.line[300] == 309 + 9 and table.line[-1] == 309 + 308  # part 0: 308 lines and #close


def tmp_path_capture(tmp_path, capture: str, lines: int) -> Path:
    path = tmp_path / f"{capture}.conn.log.labeled"
    path.write_text("".join(_head(path_of(capture), lines)))
    return path


def test_a_new_zeek_layout_without_a_field_read_so_far_is_refused_at_its_header(tmp_path):
    lines = _head(IOT23 / "CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz", 108)
    fewer = reordered(lines, [*range(0, 7), *range(8, 21)])  # without "service"
    joined = tmp_path / "joined.conn.log.labeled"
    joined.write_text("".join(lines + fewer))
    with pytest.raises(DataError, match=r"joined.conn.log.labeled:115: field list lacks \['service'\]"):
        read(joined)


def test_prepare_writes_a_joined_log_in_each_part_s_column_order(tmp_path):
    from ids_lightning.data.prepare import prepare

    joined, parts = joined_captures(tmp_path)
    (result,) = prepare([joined], tmp_path / "parquet")
    assert result["rows"] == 600 and result["skipped"] == 0
    table = parquet.read(result["output"], "iot23")
    np.testing.assert_array_equal(table.numeric, np.concatenate([read(p).numeric for p in parts]))


def test_prepare_reads_a_fifo_once_and_refuses_a_chunk_of_no_rows(tmp_path):
    """A FIFO was refused as not a regular file; --chunk-rows 0 was accepted."""
    import os
    import threading

    from ids_lightning.core.errors import ConfigError
    from ids_lightning.data.prepare import prepare

    text = "".join(_head(IOT23 / "CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz", 508))
    fifo = tmp_path / "capture.conn.log.labeled"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(text))
    writer.start()
    (result,) = prepare([fifo], tmp_path / "parquet")
    writer.join()
    assert result["rows"] == 500 and result["output"].endswith("capture.parquet")
    with pytest.raises(ConfigError, match="chunk_rows"):
        prepare([fifo], tmp_path / "parquet", chunk_rows=0)
