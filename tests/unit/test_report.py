"""The sweep report's table: one row per protocol, no std from a single seed."""

from __future__ import annotations

from ids_lightning.report import summarise, to_markdown


def test_report_keeps_experiments_apart_and_gives_no_std_for_one_seed():
    runs = [
        {"model": "cnn", "dataset": "bot_iot", "split": "random", "experiment": name, "seed": 1, "test/acc": acc}
        for name, acc in (("paper", 0.9), ("official", 0.8))
    ]
    table = summarise(runs, ["test/acc"])
    assert [(r["experiment"], r["n_seeds"], r["test/acc_mean"], r["test/acc_std"]) for r in table] == [
        ("official", 1, 0.8, None),
        ("paper", 1, 0.9, None),
    ]
    assert "±" not in to_markdown(table, ["test/acc"])


def test_report_keeps_windows_apart_and_its_markdown_columns_line_up():
    runs = [
        {"model": "cnn_lstm", "dataset": "iot23", "split": "by_capture", "window": window, "experiment": "official"}
        | {"seed": seed, "test/acc": 0.5 + window / 100}
        for window in (1, 32)
        for seed in (1, 2)
    ]
    table = summarise(runs, ["test/acc"])
    assert [(r["window"], r["n_seeds"]) for r in table] == [(1, 2), (32, 2)]
    header, rule, *rows = to_markdown(table, ["test/acc"]).splitlines()
    assert header.split(" | ")[3] == "window" and len(header.split("|")) == len(rule.split("|"))
    assert all(len(row.split("|")) == len(header.split("|")) for row in rows)
    assert rows[1].split(" | ")[3] == "32"
