"""docs/results.md is generated from the bench and report files, and stays in step with them."""

from __future__ import annotations

import json

from ids_lightning.bench.results import RESULTS, render


def rendered(folder, *files: str) -> str:
    """results.md made from ``files`` in ``folder``, each under a manifest entry of its own."""
    common = {"command": "make x", "machine": "toy CPU", "date": "2026-11-27", "load": "0.1 0.1 0.1"}
    manifest = [{"file": name, "title": name, **common} for name in files]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return render(folder)


def test_tables_come_from_the_files(tmp_path):
    (tmp_path / "parse.json").write_text(json.dumps([{"path": "arrow", "rows_per_s": 106672, "peak_rss_mb": 853.2}]))
    (tmp_path / "bench.json").write_text(
        json.dumps(
            {
                "machine": "toy CPU",
                "cores": 2,
                "rows": 4096,
                "rows_source": "bench_rows.npy",
                "results": [{"engine": "onnx_fp32", "threads": 1, "rows_per_s": {"1": 5206, "256": 10229}}],
                "ratios": {"onnx_fp32_vs_torch/threads_1/batch1_speedup": 4.91},
            }
        )
    )
    (tmp_path / "report.csv").write_text("model,test/acc_mean,test/acc_std\ncnn,0.7459,\n")
    text = rendered(tmp_path, "parse.json", "bench.json", "report.csv")
    assert "| arrow | 106,672 | 853.2 |" in text
    assert "| engine | threads | rows_per_s/1 | rows_per_s/256 |" in text
    assert "| onnx_fp32 | 1 | 5,206 | 10,229 |" in text
    assert "`onnx_fp32_vs_torch/threads_1/batch1_speedup`: 4.91" in text
    assert "| cnn | 0.7459 | – |" in text


def test_docs_results_md_is_generated_from_docs_results():
    assert (RESULTS.parent / "results.md").read_text() == render(RESULTS)


def test_the_adversarial_bench_shows_its_runs_and_the_clean_cost_and_robust_gain(tmp_path):
    runs = [{"adversarial_training": "none", "test/acc": 0.75}, {"adversarial_training": "pgd", "test/acc": 0.74}]
    report = {"device": "toy CPU", "runs": runs, "clean_cost": 0.01, "robust_gain_fgsm": 0.2}
    (tmp_path / "adversarial.json").write_text(json.dumps(report))
    text = rendered(tmp_path, "adversarial.json")
    assert "| pgd | 0.74 |" in text
    assert "clean cost +0.0100, robust gain under FGSM +0.2000" in text


def test_the_scale_bench_shows_its_runs_and_the_targets_ratios(tmp_path):
    runs = [{"rows": 2000000, "mode": "out_of_core", "rows_per_s": 6300.0, "seconds": {"train": 317.0}}]
    report = {"model": "cnn_lstm", "batch_size": 1024, "runs": runs, "summary": {"peak_rss_ratio": 1.05}}
    (tmp_path / "scale.json").write_text(json.dumps(report))
    text = rendered(tmp_path, "scale.json")
    assert "| 2,000,000 | out_of_core | 6,300 | 317.0 |" in text
    assert "- `peak_rss_ratio`: 1.05" in text and "- cnn_lstm, batch 1024" in text


def test_the_arm64_check_shows_a_row_per_case_with_its_timings_and_the_emulator(tmp_path):
    case = {"model": "m", "mode": "file", "records": 300, "records_arm64": 300, "class_mismatches": 0}
    case |= {"max_abs_prob_diff": 1e-06, "parity": True, "seconds": {"x86_64": 0.4, "arm64": 21.5}}
    runtime = {"python": "3.11.2", "numpy": "2.4.6", "onnxruntime": "1.32.0"}
    report = {
        "emulator": {
            "version": "10.0.2",
            "cpu": "cortex-a76",
            "why": "backports",
            "rejected": ["qemu 7.2: x86 cpuinfo"],
        },
        "runtime": {"arm64": runtime, "x86_64": runtime},
        "parity": {"nsl_kdd_kddtest": case},
        "steps_seconds": {"arm64 root (debootstrap)": 27.0},
    }
    (tmp_path / "edge_arm64.json").write_text(json.dumps(report))
    text = rendered(tmp_path, "edge_arm64.json")
    assert "| nsl_kdd_kddtest | m | file | 300 | 300 | 0 | 1e-06 | true | 0.4 | 21.5 |" in text
    assert "under qemu 10.0.2 -cpu cortex-a76 (backports)" in text and "qemu refused: qemu 7.2: x86 cpuinfo" in text
