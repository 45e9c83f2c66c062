"""ONNX export, the edge benchmark and the streaming detector, on real data."""

from __future__ import annotations

import csv
import functools
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ids_lightning.core.errors import DataError
from ids_lightning.core.explain import features_of, load_reference
from ids_lightning.core.fileio import open_text
from ids_lightning.edge.detector import detect
from ids_lightning.edge.runtime import load_run
from ids_lightning.evaluation.hosts import host_level
from ids_lightning.training.config import PROJECT_ROOT
from tests.helpers import DATA_DIR, NSL_KDD_TEST, trained_run

BLOCKED = [
    "torch",
    "lightning",
    "pytorch_lightning",
    "torchmetrics",
    "pandas",
    "pyarrow",
    "hydra",
    "omegaconf",
    "sklearn",
    "imblearn",
    "matplotlib",
    "rich",
]


@pytest.fixture(scope="module")
def nsl_run(tmp_path_factory, data_dir):
    """A short cnn_lstm run whose test covers all of KDDTest+."""
    return trained_run(tmp_path_factory, "nsl_run", "debug=limit", "trainer.limit_test_batches=1.0")


VALIDATION_CAPTURES = ["CTU-Honeypot-Capture-7-1", "CTU-IoT-Malware-Capture-44-1"]  # CSV exports
TEST_CAPTURE = DATA_DIR / "iot23" / "CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz"


@pytest.fixture(scope="module")
def iot_run(tmp_path_factory, data_dir):
    """Validated on whole captures (so the incident threshold is calibrated), tested on all of 42-1."""
    return trained_run(
        tmp_path_factory, "iot_run", "dataset=iot23", "debug=limit", "trainer.limit_test_batches=1.0",
        "dataset.test_partitions=[CTU-IoT-Malware-Capture-42-1]", "dataset.val_split=by_capture",
        f"dataset.val_partitions=[{','.join(VALIDATION_CAPTURES)}]",
    )  # fmt: skip


def test_export_is_verified_and_int8_recorded(nsl_run):
    folder, metrics = nsl_run
    assert metrics["onnx/max_abs_diff"] < 1e-4 and metrics["onnx/argmax_identical"] and metrics["onnx/parity_ok"]
    assert metrics["onnx/batch_sizes_checked"] == [1, 7, 64, 1000]
    assert metrics["onnx/int8_method"] in ("dynamic", "static")
    assert metrics["onnx/int8_bytes"] <= metrics["onnx/fp32_bytes"] / 3
    assert abs(metrics["onnx/fp32_test_acc"] - metrics["test/acc"]) < 1e-3
    for name in ("model.onnx", "model.int8.onnx", "preprocess.json", "bench_rows.npy", "bench_labels.npy"):
        assert (folder / name).is_file(), name


def test_detector_on_kddtest_reproduces_the_reported_test_accuracy(nsl_run, tmp_path):
    folder, metrics = nsl_run
    summary = detect(folder, NSL_KDD_TEST, tmp_path / "alerts.jsonl", progress=False, all_flows=True, explain=None)
    assert summary["records"] == 22544 and summary["skipped"] == 0 and summary["written"] == 22544
    assert summary["accuracy"] == pytest.approx(metrics["test/acc"], abs=2e-4)
    first = json.loads((tmp_path / "alerts.jsonl").open().readline())
    assert {"timestamp", "event_type", "alert", "model", "input", "label"} == set(first)
    assert first["input"]["line"] == 1 and first["event_type"] in ("alert", "flow")
    assert json.loads((tmp_path / "alerts.jsonl.summary.json").read_text())["records"] == 22544


def test_detector_counts_malformed_lines_and_flags_unknown_categories(nsl_run, tmp_path):
    folder, _ = nsl_run
    with open_text(NSL_KDD_TEST) as handle:
        lines = [next(handle) for _ in range(50)]
    lines[3] = "garbage,line\n"
    lines[7] = lines[7].replace(",tcp,", ",martian,", 1)
    lines[9] = lines[9].rsplit(",", 2)[0] + "\n"  # features only, no label: still scored
    source = tmp_path / "rows.txt"
    source.write_text("".join(lines))
    summary = detect(folder, source, tmp_path / "alerts.jsonl", progress=False, all_flows=True)
    assert summary["records"] == 49 and summary["skipped"] == 1
    assert summary["skipped_lines"][0]["line"] == 4
    records = {r["input"]["line"]: r for r in map(json.loads, (tmp_path / "alerts.jsonl").open())}
    assert 4 not in records and records[8]["alert"]["unknown"] and "label" not in records[10]
    assert records[8]["event_type"] == "alert"  # unknown is an alert whatever the class
    assert summary["labelled_records"] == 48


def test_detector_on_iot23_zeek_log_and_csv_export(iot_run, tmp_path):
    folder, _ = iot_run
    summary = detect(folder, TEST_CAPTURE, tmp_path / "a.jsonl", progress=False, all_flows=True)
    assert summary["format"] == "zeek" and summary["records"] == 4426 and summary["labelled_records"] == 4426
    record = json.loads((tmp_path / "a.jsonl").open().readline())
    assert {"uid", "src_ip", "dest_port", "community_id"} <= set(record) and record["label"] in ("benign", "malicious")
    assert isinstance(record["dest_port"], int) and record["timestamp"].startswith("2019-01-10T")
    export = DATA_DIR / "iot23" / "csv_exports" / "CTU-IoT-Malware-Capture-44-1.labeled.csv.gz"
    summary = detect(folder, export, tmp_path / "b.jsonl", model="model.int8.onnx", progress=False)
    assert summary["format"] == "iot23_csv" and summary["records"] == 237 and 0 <= summary["accuracy"] <= 1


def test_mismatched_run_folder_is_refused(nsl_run, tmp_path):
    folder, _ = nsl_run
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes((folder / "model.onnx").read_bytes())
    state = json.loads((folder / "preprocess.json").read_text())
    state["class_names"] = ["normal", "attack"]
    (broken / "preprocess.json").write_text(json.dumps(state))
    with pytest.raises(DataError, match=r"scores 5 classes but preprocess\.json names 2"):
        load_run(broken)
    state["class_names"], state["window"] = json.loads((folder / "preprocess.json").read_text())["class_names"], 8
    (broken / "preprocess.json").write_text(json.dumps(state))  # a one-flow model, a windowed state
    with pytest.raises(DataError, match=r"takes inputs of shape \[\d+\] but preprocess\.json makes \[8, \d+\]"):
        load_run(broken)
    with pytest.raises(DataError, match=r"no preprocess\.json"):
        load_run(tmp_path)


def test_edge_package_runs_without_torch(nsl_run, tmp_path):
    """Detector (its explanations included) and bench with torch, Lightning, pandas, pyarrow & co.
    made unimportable."""
    folder, _ = nsl_run
    rows = tmp_path / "KDDTest+.txt"  # its first 3,000 lines
    with open_text(NSL_KDD_TEST) as lines:
        rows.write_text("".join(line for _, line in zip(range(3000), lines)))
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"blocked: {{name}}")
        sys.meta_path.insert(0, Block())
        from ids_lightning.edge import detector, latency as bench
        summary = detector.detect({str(folder)!r}, {str(rows)!r}, {str(tmp_path / "a.jsonl")!r}, progress=False)
        assert summary["explained_alerts"] > 0
        report = bench.bench({str(folder)!r}, [1, 4], [1], latency_calls=20, seconds=0.02)
        assert not any(m.split(".")[0] in {BLOCKED!r} for m in sys.modules), sorted(sys.modules)
        print(summary["records"], sorted({{r["engine"] for r in report["results"]}}))
        print(bench.format_table(report))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[0] == "3000" and "torch_eager" not in result.stdout
    report = json.loads((folder / "bench.json").read_text())
    assert report["runtime"]["onnxruntime"] in result.stdout and report["runtime"]["emulator"] is None
    assert report["engine_choice"]["model"] in {"model.onnx", "model.int8.onnx"}
    assert f"engine for this machine: --model {report['engine_choice']['model']}" in result.stdout


def test_bench_rows_are_real_test_rows(nsl_run):
    folder, _ = nsl_run
    rows = np.load(folder / "bench_rows.npy", allow_pickle=False)
    assert rows.shape == (4096, 41) and rows.min() >= 0 and rows.max() <= 1


@functools.cache
def real_lines() -> list[str]:
    with open_text(NSL_KDD_TEST) as handle:
        return [next(handle) for _ in range(4)]


fuzz_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), min_size=1, max_size=100)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.one_of(fuzz_text, fuzz_text.map(lambda t: real_lines()[0][:60] + t)), max_size=6))
def test_detector_scores_or_counts_every_fuzzed_line(nsl_run, tmp_path, garbage):
    folder, _ = nsl_run
    source = tmp_path / "fuzz.txt"
    lines = real_lines()
    source.write_text("".join(lines[:2]) + "".join(g + "\n" for g in garbage) + "".join(lines[2:]))
    summary = detect(folder, source, tmp_path / "alerts.jsonl", progress=False, all_flows=True)
    assert summary["records"] + summary["skipped"] == len(lines) + len(garbage)
    scored = [json.loads(line)["input"]["line"] for line in (tmp_path / "alerts.jsonl").open()]
    assert len(scored) == summary["records"] and {1, 2} <= set(scored)
    assert set(scored).isdisjoint(s["line"] for s in summary["skipped_lines"])


def test_the_detector_flags_unknown_records_with_the_calibrated_novelty_threshold(nsl_run, tmp_path):
    folder, metrics = nsl_run
    novelty = json.loads((folder / "novelty.json").read_text())
    assert novelty["fpr"] == 0.01 and metrics["novelty/threshold"] == novelty["threshold"]
    assert metrics["val/novelty/benign_flagged"] <= 0.01  # calibrated on validation, never on test
    assert (
        0 <= metrics["test/novel_types/flagged"] <= 1
        and metrics["test/novel_types/flagged"] >= metrics["test/novel_types/detected"]
    )  # flagged = an attack class or unknown
    alerts = tmp_path / "alerts.jsonl"
    summary = detect(folder, NSL_KDD_TEST, alerts, progress=False, all_flows=True, explain=None)
    records = [json.loads(line)["alert"] for line in alerts.read_text().splitlines()]
    assert all((r["novelty"] > novelty["threshold"]) <= r["unknown"] for r in records)
    assert summary["unknown_records"] == sum(r["unknown"] for r in records) > 0
    assert summary["novelty_threshold"] == novelty["threshold"]
    # the benign density: a record the classifier calls normal but unlike benign traffic is unknown
    density = json.loads((folder / "density.json").read_text())
    assert summary["density_threshold"] == density["threshold"] == metrics["density/threshold"]
    assert metrics["val/novelty/fused/benign_flagged"] <= 2 * 0.01 + 1e-9  # each flag at 1 % of validation
    unlike = [r["density"] > density["threshold"] and max(r["probabilities"], key=r["probabilities"].get) == "normal"
              for r in records]  # fmt: skip
    assert all(r["unknown"] for r, u in zip(records, unlike) if u)
    assert summary["unlike_benign_records"] == sum(unlike) > 0


def test_every_run_compares_its_novelty_score_with_energy_and_mahalanobis(nsl_run, tmp_path):
    from ids_lightning.bench.novelty import main as compare_scores

    _, metrics = nsl_run
    deployed = "test/novelty/max_softmax"
    assert metrics[f"{deployed}/benign_flagged"] == pytest.approx(metrics["test/novelty/benign_flagged"])
    assert metrics[f"{deployed}/novel_types_flagged"] == pytest.approx(metrics["test/novel_types/flagged"])
    for score in ("max_softmax", "energy", "mahalanobis", "benign_density", "isolation_forest", "benign_penultimate"):
        assert metrics[f"test/novelty/{score}/benign_flagged"] < 0.05  # calibrated to 1 % on validation
        assert 0.6 < metrics[f"test/novelty/{score}/auroc_novel_vs_benign"] <= 1
    # the bench re-tests the same checkpoint: the same figures
    rows = compare_scores([str(nsl_run[0]), "--output", str(tmp_path / "novelty.json")])
    by_score = {row["score"]: row for row in rows}
    for score in ("max_softmax", "energy", "mahalanobis"):
        for measure in ("benign_flagged", "auroc_novel_vs_benign"):
            assert by_score[score][f"{measure}_mean"] == pytest.approx(metrics[f"test/novelty/{score}/{measure}"])
    assert (tmp_path / "novelty.csv").read_text().startswith("score,runs,benign_flagged_mean")


def test_detector_reads_a_joined_log_in_each_part_s_column_order(iot_run, tmp_path):
    """Two real captures joined, the second with its columns in another order: every record
    names its own flow's hosts and ports, and scores as the parts do on their own."""
    from tests.integration.test_iot23 import joined_captures

    joined, parts = joined_captures(tmp_path)
    folder, _ = iot_run
    records = []
    for number, path in enumerate([joined, *parts]):
        summary = detect(folder, path, tmp_path / f"{number}.jsonl", progress=False, all_flows=True)
        assert summary["skipped"] == 0
        lines = (tmp_path / f"{number}.jsonl").open()
        records.append([r for r in map(json.loads, lines) if r["event_type"] != "incident"])  # the flows
    without_line = [[{k: v for k, v in r.items() if k != "input"} for r in part] for part in records]
    assert len(records[0]) == 600 and without_line[0] == without_line[1] + without_line[2]
    assert records[0][300]["input"]["line"] == 309 + records[2][0]["input"]["line"]  # part 0: 308 lines, #close
    with open_text(DATA_DIR / "iot23" / "CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz") as handle:
        first_row = next(line for line in handle if not line.startswith("#")).split("\t")
    assert (records[0][300]["src_ip"], records[0][300]["dest_port"]) == (first_row[2], int(first_row[5]))


def test_the_incident_threshold_comes_from_the_validation_captures_and_the_sensor_meets_its_replay(iot_run, tmp_path):
    folder, metrics = iot_run
    hosts = 0  # the validation captures' source hosts, each named within its capture
    for name in VALIDATION_CAPTURES:
        with open_text(DATA_DIR / "iot23" / "csv_exports" / f"{name}.labeled.csv.gz") as lines:
            hosts += len({row["id.orig_h"] for row in csv.DictReader(lines)})
    points = json.loads((folder / "operating_points.json").read_text())["points"]
    for point in points:
        calibrated = point["incidents"]
        assert calibrated["hosts"] == hosts and calibrated["window_seconds"] == 300
        assert calibrated["false_incidents_per_host_day"] <= calibrated["budget_per_host_day"]
    default = next(p["incidents"] for p in points if p["fpr"] == 0.01)
    assert metrics["val/incidents/alerts_needed"] == default["alerts"]
    summary = detect(folder, TEST_CAPTURE, tmp_path / "a.jsonl", progress=False, all_flows=True)
    assert summary["incident_rule"].startswith(f"{default['alerts']} alerts from one source host in 300 s")
    assert "calibrated on the run's validation captures" in summary["incident_rule"]
    written = [json.loads(line) for line in (tmp_path / "a.jsonl").open()]
    alerts = [r["alert"] for r in written if r["event_type"] == "alert"]
    assert alerts and all(a["category"] in ("malicious", "unknown") for a in alerts)  # never a "benign" alert
    assert all(a["category"] == "unknown" for a in alerts if a["score"] <= summary["operating_point"]["threshold"])
    measured = host_level(written)
    assert summary["incidents"] == measured["incidents"] == metrics["test/incidents/incidents"]
    assert measured["time_to_detect_median_s"] == metrics["test/incidents/time_to_detect_median_s"]
    assert measured["false_incidents_per_host_day"] == metrics["test/incidents/false_incidents_per_host_day"]
    chosen = detect(folder, TEST_CAPTURE, tmp_path / "b.jsonl", progress=False, incident_alerts=1, explain=None)
    assert chosen["incident_rule"].endswith("(set by --incident-alerts)")
    assert chosen["incidents"] >= summary["incidents"]


@pytest.mark.parametrize("fixture", ["nsl_run", "iot_run"])
def test_the_sensor_s_explanations_equal_a_row_by_row_occlusion_of_real_alerts(fixture, request, tmp_path):
    """On real rows through the run's ONNX model: each alert's explanation is what replacing one
    feature at a time by the reference flow does to its class's probability."""
    folder, _ = request.getfixturevalue(fixture)
    whole = NSL_KDD_TEST if fixture == "nsl_run" else TEST_CAPTURE
    source = tmp_path / whole.name.removesuffix(".gz")  # its first 1,000 lines
    with open_text(whole) as lines:
        source.write_text("".join(line for _, line in zip(range(1000), lines)))
    summary = detect(folder, source, tmp_path / "a.jsonl", progress=False, explain=41)
    assert summary["explanations"] == "top 41 features of each alert" and summary["explained_alerts"] > 0
    alerts = [r for r in map(json.loads, (tmp_path / "a.jsonl").open()) if r["event_type"] == "alert"][:20]
    run = load_run(folder)
    features = features_of(run.preprocessor, run.spec.feature_groups)
    reference = load_reference(folder, run.preprocessor)
    table = run.spec.read_file(source, keep_ids=True)
    x, _ = run.preprocessor.transform(table)
    by_line = {int(line): i for i, line in enumerate(table.line)}
    for record in alerts:
        row = x[by_line[record["input"]["line"]]]
        probabilities, category = record["alert"]["probabilities"], record["alert"]["category"]
        if category not in probabilities:  # an alert of the unknown flag alone: its likeliest class
            category = max(probabilities, key=probabilities.get)
        target = run.class_names.index(category)
        base = run.score(row[None])[0, target]
        for entry in record["alert"]["explanation"]:
            columns = list(next(f for f in features if f.name == entry["feature"]).columns)
            occluded = row.copy()
            occluded[columns] = reference[columns]
            assert entry["contribution"] == pytest.approx(base - run.score(occluded[None])[0, target], abs=2e-6)


def test_explain_below_one_feature_is_refused_in_one_line(nsl_run, tmp_path, capsys):
    from ids_lightning.cli import detect as command

    folder, _ = nsl_run
    argv = ["--run", str(folder), "--input", str(NSL_KDD_TEST), "--output", str(tmp_path / "a.jsonl"), "--explain", "0"]
    with pytest.raises(SystemExit) as refused:
        command.main(argv)
    stderr = capsys.readouterr().err
    assert refused.value.code == 2 and "--explain" in stderr and "at least 1" in stderr
    assert not (tmp_path / "a.jsonl").exists()


def test_a_run_writes_its_feature_importance_and_the_report_compares_it(nsl_run, tmp_path):
    from ids_lightning.analysis.report import report

    folder, metrics = nsl_run
    importance = json.loads((folder / "importance.json").read_text())
    run = load_run(folder)
    assert list(importance["classes"]) == run.class_names and importance["possible_shortcuts"] == []
    assert len(importance["features"]) == 41 and {"service", "flag", "protocol_type"} <= set(importance["features"])
    attack = importance["classes"]["DoS"]
    assert 0 < attack["rows"] <= 200 and attack["top"] and set(attack["top"]) <= set(importance["features"])
    assert (folder / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["importance/possible_shortcuts"] == 0
    report([folder], tmp_path, baselines=False)
    table = (tmp_path / "importance.md").read_text()
    assert f"| DoS | {', '.join(attack['top'][:1])} +" in table
