"""A fourth dataset is one spec, its config and its tests: the template, run end to end.

``ToyFlows`` below is the template that ``docs/datasets.md`` points to: a labelled CSV format
read through the shared chunked reader. Registered, it works with the DataModule (random and
by-host splits), ``prepare``, training, ONNX export and the streaming detector, none of which
names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ids_lightning.core.columns import report_invalid_values
from ids_lightning.core.delimited import Layout, LineParser, RowReporter, read_chunks
from ids_lightning.core.errors import DataError
from ids_lightning.core.spec import DatasetSpec, Split, TableLines
from ids_lightning.core.table import RawTable
from ids_lightning.data.prepare import prepare
from ids_lightning.datasets import SPECS, sniff_dataset
from ids_lightning.edge.detector import detect
from ids_lightning.training.run import train
from tests.helpers import QUIET, datamodule

COLUMNS = ["ts", "host", "duration", "bytes", "proto", "label"]
LAYOUT = Layout(COLUMNS, ",", 1, ("",), frozenset({"ts", "duration", "bytes"}))  # one header line


class ToyFlows(DatasetSpec):
    name = "toy_flows"
    title = "Toy flows"
    tasks = {"binary": ("benign", "attack"), "label": None}  # fixed classes, or learnt from training
    splits = {"random": Split("random"), "by_host": Split("partition", "host")}
    benign = frozenset({"benign"})
    id_columns = ("host",)
    host_column, time_column, partition_columns = "host", "ts", ("host",)
    never_features = ("ts", "host", "label")
    numeric, categorical = ("duration", "bytes"), ("proto",)

    flow_fields = {"timestamp": "ts", "src_ip": "host"}  # what the sensor's records name

    def sniff_head(self, head, source):
        if not head or head[0].rstrip("\r\n").split(",") != COLUMNS:
            raise DataError(f"{source}:1: not a toy flow file")
        return "csv"

    def iter_tables(self, path, *, chunk_rows=1_000_000, bad_rows="error", engine="auto", **_):
        report = RowReporter(str(path), bad_rows)
        for chunk in read_chunks(path, LAYOUT, chunk_rows, bad_rows, engine):
            yield self.to_table(chunk, str(path), report)

    def line_reader(self, head, source, *, bad_rows="skip", **_):
        """The detector's reader: the same rows, a line at a time (a file, a pipe, a growing log)."""
        report = RowReporter(source, bad_rows)
        return TableLines(LineParser(LAYOUT, report, source), lambda chunk: self.to_table(chunk, source, report), 1)

    def to_table(self, chunk, source, report):
        c, n = chunk.columns, len(chunk)
        report_invalid_values(c, self.numeric, chunk.line, report)
        table = RawTable(
            numeric=np.column_stack([c[name] for name in self.numeric]).reshape(n, len(self.numeric)),
            categorical=np.column_stack([c[name] for name in self.categorical]).reshape(n, 1).astype(object),
            labels=c["label"],
            numeric_names=list(self.numeric),
            categorical_names=list(self.categorical),
            line=chunk.line,
            source=np.full(n, source, dtype=object),
            skipped=list(chunk.skipped),
            meta={"host": c["host"], "ts": c["ts"]},
        )
        return report.drop_reported(table)

    def task_labels(self, table, task):
        if task == "label":
            return table.labels
        return np.array([None if v is None else ("benign" if v == "benign" else "attack") for v in table.labels])


@pytest.fixture
def toy(tmp_path, monkeypatch) -> Path:
    """The spec registered for this test, and 900 flows of 3 hosts (attacks: many bytes, short)."""
    monkeypatch.setitem(SPECS, "toy_flows", ToyFlows())
    rng = np.random.default_rng(0)
    rows = [",".join(COLUMNS)]
    for i in range(900):
        kind = ("benign", "scan", "flood")[i % 3]
        size = rng.integers(100, 1000) if kind == "benign" else rng.integers(20000, 90000)
        proto = "tcp" if kind != "flood" else "udp"
        rows.append(f"{i * 0.5},10.0.0.{i % 4 if i % 4 else 1},{rng.random() * 3:.3f},{size},{proto},{kind}")
    path = tmp_path / "toy" / "flows.csv"
    path.parent.mkdir()
    path.write_text("\n".join(rows) + "\n")
    return path


def toy_overrides(path: Path) -> list[str]:
    return [
        "dataset.spec=toy_flows",
        f"dataset.files=[{path}]",
        "dataset.test_files=null",
        "dataset.download=false",
        "dataset.split=random",
        "dataset.task=binary",
    ]


def test_the_datamodule_reads_and_splits_a_new_dataset(toy):
    dm = datamodule("nsl_kdd", files=[str(toy)], download=False, spec="toy_flows", task="label", split="random")
    assert dm.class_names == ["benign", "flood", "scan"] and dm.num_features == 3
    by_host = datamodule(
        "nsl_kdd", files=[str(toy)], download=False, spec="toy_flows", task="binary", split="by_host",
        test_partitions=["10.0.0.3"],
    )  # fmt: skip
    assert sum(by_host.stats["class_counts"]["test"].values()) == 225
    assert sniff_dataset(toy)[0].name == "toy_flows"


def test_prepare_train_export_and_detect_a_new_dataset(toy, tmp_path, make_config):
    (result,) = prepare([toy], tmp_path / "parquet")
    assert result == {"input": str(toy), "output": str(tmp_path / "parquet" / "flows.parquet"),
                      "format": "toy_flows", "rows": 900, "skipped": 0}  # fmt: skip
    metrics = train(
        make_config(
            *QUIET,
            *toy_overrides(tmp_path / "parquet" / "flows.parquet"),
            "model=lstm",
            "model.optimizer.lr=0.01",
            "trainer.max_epochs=10",
        )
    )
    assert metrics["dataset"] == "toy_flows" and metrics["num_features"] == 3, metrics
    summary = detect(tmp_path, toy, tmp_path / "alerts.jsonl", progress=False, all_flows=True)
    assert summary["records"] == 900 and summary["format"] == "csv"
    assert summary["accuracy"] > 0.9, (summary, metrics)  # bytes alone separate the classes
    first = json.loads((tmp_path / "alerts.jsonl").open().readline())
    assert first["src_ip"] == "10.0.0.1" and first["label"] == "benign" and first["timestamp"].startswith("1970")
