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
