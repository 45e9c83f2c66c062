"""BoT-IoT layouts on the real samples, hex ports, leaky columns, bad rows, the DataModule."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ids_lightning.core.errors import DataError, MalformedRowError
from ids_lightning.data import flow_datamodule
from ids_lightning.datasets import bot_iot
from tests.helpers import DATA_DIR, datamodule

FULL = DATA_DIR / "bot_iot" / "bot_iot_fullfeatures_normal_ddos_sample.csv.gz"
REDUCED = DATA_DIR / "bot_iot" / "bot_iot_reducedfeatures_normal_dos_recon_sample.csv.gz"
LEAKY = {"pkSeqID", "stime", "ltime", "saddr", "daddr", "seq", "smac", "dmac", "soui", "doui", "sco", "dco"}


@pytest.mark.parametrize("engine", ["arrow", "python"])
def test_real_samples_parse_to_the_counts_in_sources(data_dir, engine):
    full = bot_iot.SPEC.read_file(FULL, engine=engine)
    assert bot_iot.resolve(FULL)[0] == "full" and len(full) == 1109
    assert Counter(full.labels.tolist()) == {"Normal": 65, "DDoS": 1044}
    assert Counter(full.meta["attack"].tolist()) == {"0": 65, "1": 1044}
    assert Counter(full.meta["subcategory"].tolist()) == {"Normal": 65, "TCP": 1044}
    reduced = bot_iot.SPEC.read_file(REDUCED, engine=engine)
    assert bot_iot.resolve(REDUCED)[0] == "reduced" and len(reduced) == 18867
    assert Counter(reduced.labels.tolist()) == {"Normal": 6870, "DoS": 10161, "Reconnaissance": 1836}


def test_leaky_columns_are_metadata_not_features(data_dir):
    table = bot_iot.SPEC.read_file(FULL)
    assert not LEAKY & set(table.numeric_names + table.categorical_names)
    assert {"pkSeqID", "saddr", "daddr"} <= set(table.meta)
    ports = table.numeric[:, table.numeric_names.index("sport")]
    assert ports[0] == 0  # arp row: unset port


def write_csv(tmp_path, header, rows, name="x.csv"):
    path = tmp_path / name
    path.write_text("\n".join([",".join(header), *rows]) + "\n")
    return path


BEST10 = [
    "pkSeqID",
    "proto",
    "saddr",
    "sport",
    "daddr",
    "dport",
    "seq",
    "stddev",
    "N_IN_Conn_P_SrcIP",
    "min",
    "state_number",
    "mean",
    "N_IN_Conn_P_DstIP",
    "drate",
    "srate",
    "max",
    "attack",
    "category",
    "subcategory",
]


def best10_row(sport="0x0303", attack="1", category="DDoS", sub="UDP"):
    return f'1,"udp",1.1.1.1,{sport},2.2.2.2,80,7,0.1,3,0.0,4,0.2,5,0.0,0.3,0.4,{attack},{category},{sub}'


def test_best10_layout_hex_ports_and_quoted_values(tmp_path):
    path = write_csv(tmp_path, [f'"{h}"' for h in BEST10], [best10_row(), best10_row("53", "0", "Normal", "Normal")])
    for engine in ("arrow", "python"):
        table = bot_iot.SPEC.read_file(path, engine=engine)
        assert bot_iot.resolve(path)[0] == "best10"
        assert table.numeric[:, table.numeric_names.index("sport")].tolist() == [0x0303, 53]
        assert table.categorical[:, 0].tolist() == ["udp", "udp"]
        assert bot_iot.SPEC.task_labels(table, "binary").tolist() == ["attack", "normal"]
        assert bot_iot.SPEC.task_labels(table, "subcategory").tolist() == ["UDP", "Normal"]


def test_custom_column_map(tmp_path):
    path = write_csv(tmp_path, ["a", "b", "kind", "is_bad"], ["1,tcp,Scan,1", "2,udp,Normal,0"])
    table = bot_iot.SPEC.read_file(
        path,
        layout="custom",
        column_map={
            "numeric": ["a"],
            "categorical": ["b"],
            "category": "kind",
            "attack": "is_bad",
            "subcategory": None,
        },
    )
    assert table.numeric.ravel().tolist() == [1, 2] and table.labels.tolist() == ["Scan", "Normal"]


@pytest.mark.parametrize("engine", ["arrow", "python"])
def test_bad_values_name_file_and_line(tmp_path, engine):
    rows = [best10_row(), best10_row(sport="0xZZ"), best10_row(attack="7"), best10_row(sport="99999")]
    path = write_csv(tmp_path, BEST10, rows)
    with pytest.raises(MalformedRowError, match=r"x\.csv:3: field 'sport': '0xZZ' is not a number"):
        bot_iot.SPEC.read_file(path, engine=engine)
    table = bot_iot.SPEC.read_file(path, bad_rows="skip", engine=engine)
    assert len(table) == 1 and [s[1] for s in table.skipped] == [3, 4, 5]


def test_layout_errors_are_clear(tmp_path):
    path = write_csv(tmp_path, ["foo", "category"], ["1,DoS"])
    with pytest.raises(DataError, match="header matches no BoT-IoT layout"):
        bot_iot.SPEC.read_file(path)
    reduced = bot_iot.SPEC.read_file(REDUCED)
    with pytest.raises(DataError, match="no subcategory column"):
        bot_iot.SPEC.task_labels(reduced, "subcategory")


def test_datamodule_random_split_and_tasks(data_dir):
    dm = datamodule("bot_iot", data_dir, files=["bot_iot/*reduced*"], task="category", split="random")
    assert dm.class_names == ["DoS", "Normal", "Reconnaissance"]
    assert sum(sum(c.values()) for c in dm.stats["class_counts"].values()) == 18867
    full = datamodule("bot_iot", data_dir, files=["bot_iot/*fullfeatures*"], task="binary", split="random")
    assert full.class_names == ["normal", "attack"] and full.num_features == 17 + 3


def test_files_split_tests_on_test_files(data_dir, tmp_path):
    dm = datamodule(
        "bot_iot", data_dir, files=["bot_iot/*fullfeatures*"], test_files=[str(FULL)], task="subcategory", split="files"
    )
    assert sum(dm.stats["class_counts"]["test"].values()) == 1109
    assert np.isclose(sum(dm.stats["class_counts"]["val"].values()) / 1109, 0.15, atol=0.01)


def test_read_options_reach_the_reader_and_typos_are_refused(data_dir):
    def build(**read_options):
        dm = flow_datamodule(
            spec="bot_iot", data_dir=str(data_dir), files=[str(REDUCED)], task="category", split="random",
            read_options=read_options,
        )  # fmt: skip
        dm.setup()
        return dm

    with pytest.raises(ValueError, match=r"unknown keys \['layuot'\]"):
        build(layuot="best10")
    with pytest.raises(DataError, match="layout 'best10' needs columns"):
        build(layout="best10")
    assert build(layout="reduced").num_classes == 3


@pytest.mark.parametrize("engine", ["arrow", "python"])
def test_a_hash_line_is_a_bad_row_not_a_comment(tmp_path, engine):
    # found by the fuzz test below: a CSV line "#" used to vanish uncounted (Zeek's comment rule)
    path = write_csv(tmp_path, CSV_HEADER.split(","), [CSV_ROW, "#", CSV_ROW])
    table = bot_iot.SPEC.read_file(path, bad_rows="skip", engine=engine)
    assert len(table) == 2 and [s[1] for s in table.skipped] == [3]


CSV_HEADER = "flgs,proto,pkts,bytes,dur,mean,stddev,sum,min,max,rate,category"
CSV_ROW = "e,tcp,10,680,1453.9,2.8e-05,8e-06,0.000138,2.2e-05,4.2e-05,0.00619,Normal"
csv_line = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters='\r\n"'), max_size=80)


@settings(max_examples=100)
@given(lines=st.lists(st.one_of(csv_line, st.just(CSV_ROW), csv_line.map(lambda t: CSV_ROW[:30] + t)), max_size=10))
def test_every_fuzzed_csv_line_is_parsed_or_counted(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.csv"
    path.write_text("\n".join([CSV_HEADER, CSV_ROW, *lines]) + "\n")
    for engine in ("arrow", "python"):
        tables = list(bot_iot.SPEC.iter_tables(path, bad_rows="skip", engine=engine))
        rows = sum(len(t) for t in tables)
        skipped = {line for t in tables for _, line, _ in t.skipped}
        assert rows + len(skipped) == len(lines) + 1, engine
