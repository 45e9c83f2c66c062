"""The training throughput bench (``make bench``) writes one row per path and batch size with
its ratios: the bench itself, run small (speed targets live in the bench, never in a test)."""

from __future__ import annotations

import json
import statistics

import pytest


def test_bench_writes_one_row_per_path_and_batch(tmp_path, data_dir):
    from ids_lightning.bench.train import main

    output = tmp_path / "train.json"
    args = ["--batches", "64", "--rows", "640", "--repeats", "3", "--seed-epochs", "0", "--windows", "1", "8"]
    rows = main([*args, "--seeds", "2", "--data-dir", str(data_dir), "--output", str(output)])
    paths = ("project", "lightning_dataloader", "hand_loop", "batched_seeds", "adversarial_pgd")
    assert [(r["path"], r["batch"]) for r in rows[:5]] == [(p, 64) for p in paths]
    tabular, windowed = rows[5:9], rows[9:]
    assert [r["path"] for r in tabular] == ["project_tabm", "hand_loop_tabm", "project_ft_transformer",
                                            "hand_loop_ft_transformer"]  # fmt: skip
    for project_row, hand_row in (tabular[:2], tabular[2:]):
        assert project_row["vs_hand_loop"] == pytest.approx(
            project_row["samples_per_s"] / hand_row["samples_per_s"], abs=2e-3
        )
    assert [(r["path"], r["window"]) for r in windowed] == [("windowed", 1), ("windowed", 8)]
    assert windowed[1]["vs_window_1"] == pytest.approx(
        windowed[1]["samples_per_s"] / windowed[0]["samples_per_s"], abs=2e-3
    )
    rows = rows[:5]
    assert json.loads(output.read_text())[:5] == rows
    for row in rows:
        assert row["device"] and row["samples_per_s"] > 0 and len(row["repeats"]) == 3
        assert row["samples_per_s"] == pytest.approx(statistics.median(row["repeats"]), abs=0.2)
    project, hand, batched, adversarial = rows[0], rows[2], rows[3], rows[4]
    for row in rows[:2]:
        assert row["vs_hand_loop"] == pytest.approx(row["samples_per_s"] / hand["samples_per_s"], abs=2e-3)
    assert batched["seeds"] == 2
    assert batched["vs_one_seed_time"] == pytest.approx(
        2 * project["samples_per_s"] / batched["samples_per_s"], abs=2e-3
    )
    assert adversarial["vs_project"] == pytest.approx(adversarial["samples_per_s"] / project["samples_per_s"], abs=2e-3)
    assert adversarial["vs_project"] < 1  # PGD-3 costs three more forward and backward passes
