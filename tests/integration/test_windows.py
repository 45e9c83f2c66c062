"""Windows on the real captures: no leakage across splits, a windowed run through training,
ONNX, the streaming detector (parity with offline windows, bounded host memory) and the
classical baseline with context features."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ids_lightning.analysis.baseline import baseline
from ids_lightning.core.errors import ConfigError
from ids_lightning.core.splits import split_table
from ids_lightning.core.windows import CONTEXT_FEATURES, PAD, host_groups, window_index, windowed, with_context
from ids_lightning.datasets import get_spec
from ids_lightning.edge.detector import detect
from ids_lightning.edge.runtime import load_run
from tests.helpers import DATA_DIR, QUIET, datamodule, trained_run

IOT23 = get_spec("iot23")
TORII = DATA_DIR / "iot23" / "csv_exports" / "CTU-IoT-Malware-Capture-20-1.labeled.csv.gz"
ECHO = DATA_DIR / "iot23" / "CTU-Honeypot-Capture-5-1.conn.log.labeled.gz"  # 24 source hosts
WINDOWED = [
    "dataset=iot23",
    "model=cnn_lstm",
    "dataset.window=8",
    "dataset.context=true",
    "trainer.max_epochs=2",
    "callbacks.early_stopping=null",
]


def flows_in_windows(table, windows) -> set[tuple[str, int]]:
    used = np.unique(windows[windows != PAD])
    return set(zip(table.source[used].tolist(), table.line[used].tolist()))


def test_a_windowed_random_split_puts_no_test_flow_inside_a_training_window():
    dm = datamodule("iot23", setup=False, split="random", window=16)
    tables, _ = dm.load_splits()
    windows = dm.tables.windows_of(tables)
    train_flows = flows_in_windows(tables["train"], windows["train"])
    for stage in ("val", "test"):
        own = set(zip(tables[stage].source.tolist(), tables[stage].line.tolist()))
        assert own and not own & train_flows
        assert flows_in_windows(tables[stage], windows[stage]) <= own
    # Control: windows over the whole capture, then a split by flow, do leak. The check above
    # would catch a datamodule that built windows before splitting.
    whole = dm.tables.read(dm.options.source.files)
    leaky = split_table(whole, IOT23.splits["random"], val_fraction=0.15, test_fraction=0.15, seed=1)
    all_windows = window_index(host_groups(whole, IOT23.host_column), 16)
    ids = list(zip(whole.source.tolist(), whole.line.tolist()))
    position = {flow: i for i, flow in enumerate(ids)}
    test_rows = [position[f] for f in zip(leaky["test"].source.tolist(), leaky["test"].line.tolist())]
    train_rows = [position[f] for f in zip(leaky["train"].source.tolist(), leaky["train"].line.tolist())]
    assert flows_in_windows(whole, all_windows[train_rows]) & {ids[i] for i in test_rows}


def test_a_windowed_random_split_moves_blocks_of_each_hosts_flows():
    dm = datamodule("iot23", setup=False, split="random", window=16)
    tables, _ = dm.load_splits()
    test = tables["test"]
    # within each (file, host), test flows come in runs of consecutive flows, not scattered ones
    groups = host_groups(test, IOT23.host_column)
    runs = np.diff(test.line)[groups[1:] == groups[:-1]]
    assert np.median(runs) == 1


def test_windowed_datamodule_on_real_captures(tmp_path):
    dm = datamodule("iot23", window=8, context=True)
    x, y = dm.tensors["train"]
    assert x.shape == (len(y), 8, dm.num_features + 1)
    assert dm.preprocessor.window == 8
    assert dm.preprocessor.numeric_names[-len(CONTEXT_FEATURES) :] == list(CONTEXT_FEATURES)
    assert dm.stats["window"] == 8 and dm.stats["context_features"] == list(CONTEXT_FEATURES)
    batch = x[:64]
    present = batch[..., -1]
    assert set(present.unique().tolist()) <= {0.0, 1.0} and present[:, -1].all()
    # padding only on the left: once a window has a flow, every later position has one
    assert (present[:, 1:] >= present[:, :-1]).all()
    # BoT-IoT's full layout has hosts and times too
    bot = datamodule("bot_iot", window=4, files=["bot_iot/bot_iot_fullfeatures_*.csv*"])
    assert bot.tensors["test"][0].shape[1:] == (4, bot.num_features + 1)


@pytest.mark.parametrize(
    ("dataset", "overrides", "message"),
    [
        ("nsl_kdd", {"window": 8}, "no source hosts and times"),
        ("iot23", {"window": 8, "balance": "smote"}, "breaks windows"),
        ("iot23", {"context": True}, "set dataset.window above 1"),
    ],
)
def test_windows_refuse_what_they_cannot_do(dataset, overrides, message):
    with pytest.raises(ConfigError, match=message):
        datamodule(dataset, setup=False, **overrides)


def test_bot_iot_layout_without_hosts_refuses_windows():
    with pytest.raises(ConfigError, match="saddr"):
        datamodule("bot_iot", window=4, files=["bot_iot/bot_iot_reducedfeatures_*.csv*"])


@pytest.fixture(scope="module")
def windowed_run(tmp_path_factory):
    return trained_run(tmp_path_factory, "windowed", *WINDOWED)


def test_a_windowed_run_trains_exports_and_beats_chance(windowed_run):
    folder, metrics = windowed_run
    assert metrics["window"] == 8
    assert metrics["val/f1_macro"] > 0.9  # benign vs malicious on held-out blocks of training captures
    assert metrics["onnx/parity_ok"] and metrics["onnx/argmax_identical"]
    assert np.load(folder / "bench_rows.npy").shape[1:] == (8, metrics["num_features"] + 1)
    assert (folder / "model.int8.onnx").is_file()


def offline_scores(folder, path):
    """The run's scores of a capture's flows from windows built over the whole file at once."""
    run = load_run(folder)
    table = IOT23.read_file(path, keep_ids=True)
    windows = window_index(host_groups(table, IOT23.host_column), run.preprocessor.window)
    x, _ = run.preprocessor.transform(with_context(table, windows, IOT23))
    return table, run.score(windowed(x, windows))


def test_streamed_scores_equal_offline_windowed_scores(windowed_run, tmp_path):
    folder, _ = windowed_run
    table, expected = offline_scores(folder, TORII)
    alerts = tmp_path / "alerts.jsonl"
    # chunks of 700 records: windows cross chunk boundaries through the hosts' rings
    summary = detect(folder, TORII, alerts, chunk_rows=700, progress=False, all_flows=True)
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert [r["input"]["line"] for r in records] == table.line.tolist()
    classes = load_run(folder).class_names
    likeliest = [max(r["alert"]["probabilities"], key=r["alert"]["probabilities"].get) for r in records]
    assert likeliest == [classes[i] for i in expected.argmax(1)]
    streamed = np.array([max(r["alert"]["probabilities"].values()) for r in records])
    assert np.abs(streamed - expected.max(1)).max() <= 1e-5
    assert summary["window"] == 8 and summary["hosts_tracked"] == 3 and summary["hosts_evicted"] == 0


def test_the_detector_bounds_the_hosts_it_remembers(windowed_run, tmp_path):
    folder, _ = windowed_run
    summary = detect(folder, ECHO, tmp_path / "a.jsonl", chunk_rows=100, progress=False, max_hosts=4)
    assert summary["records"] == 1374
    assert summary["hosts_tracked"] == 4 and summary["hosts_evicted"] > 0
    full = detect(folder, ECHO, tmp_path / "b.jsonl", chunk_rows=100, progress=False)
    assert full["hosts_tracked"] == 24 and full["hosts_evicted"] == 0


def test_the_baseline_reads_flow_and_context_features(tmp_path):
    overrides = ["dataset=iot23", "dataset.window=16", "dataset.context=true", *QUIET]
    [summary] = baseline(overrides, tmp_path, models=("hist_gradient_boosting",))
    assert summary["window"] == 16 and summary["context_features"] == list(CONTEXT_FEATURES)
    assert summary["val/f1_macro"] > 0.9


def test_a_windowed_run_s_alerts_name_the_flows_of_the_window_that_weighed_most(windowed_run, tmp_path):
    import jsonschema

    from ids_lightning.edge.alerts import SCHEMA

    folder, _ = windowed_run
    summary = detect(folder, TORII, tmp_path / "a.jsonl", progress=False)
    written = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    for record in written:
        validator.validate(record)
    alerts = [r["alert"] for r in written if r["event_type"] == "alert"]
    assert summary["explained_alerts"] >= len(alerts) > 0
    weighed = [a["window_flows"] for a in alerts if a["window_flows"]]
    assert weighed and all(0 <= f["back"] < summary["window"] for flows in weighed for f in flows)
    assert all(flows == sorted(flows, key=lambda f: -f["contribution"]) for flows in weighed)
