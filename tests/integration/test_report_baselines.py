"""The report puts classical baselines beside every deep row, fitting those a sweep lacks once."""

from __future__ import annotations

import json

from ids_lightning.analysis.report import report
from tests.helpers import SMALL_RUN, trained_run


def test_the_report_fits_missing_baselines_on_the_runs_rows_once(tmp_path_factory, capsys):
    folder, metrics = trained_run(tmp_path_factory, "deep", *SMALL_RUN, "trainer.max_epochs=1")
    table = report([folder], tree_trials=2)
    by_model = {row["model"]: row for row in table}
    assert set(by_model) == {"cnn", "random_forest", "hist_gradient_boosting", "lightgbm"}
    tuned = next((folder / "baselines").glob("*/lightgbm"))
    assert (tuned / "model.onnx").is_file() and (tuned / "preprocess.json").is_file()  # deployable
    for model in ("random_forest", "hist_gradient_boosting", "lightgbm"):
        fitted = json.loads(next((folder / "baselines").glob(f"*/{model}/metrics.json")).read_text())
        # the deep run's rows: same dataset, split, seed, classes and test class counts
        for key in ("dataset", "split", "seed", "class_names", "window"):
            assert fitted[key] == metrics[key]
        assert fitted["class_counts"]["test"] == metrics["class_counts"]["test"]
        assert by_model[model]["test/acc_mean"] == fitted["test/acc"] > 0.5
    assert "fitting random_forest" in capsys.readouterr().out
    again = report([folder], tree_trials=2)  # the sweep now holds them: nothing is fitted twice
    assert "fitting" not in capsys.readouterr().out
    assert {row["model"]: row["n_seeds"] for row in again} == {m: 1 for m in by_model}


def test_protocols_reading_the_same_rows_share_one_baseline_fit(tmp_path_factory, capsys):
    """An ablation's loss or width variants differ in their tags (the report's experiment), not
    in their rows: each gets baseline rows, from one fit per model."""
    runs = [
        trained_run(tmp_path_factory, name, *SMALL_RUN, "trainer.max_epochs=1", f"tags=[{name}]", *extra)[0]
        for name, extra in (("wide", ["model.net.hidden=32"]), ("narrow", ["model.net.hidden=8"]))
    ]
    output = tmp_path_factory.mktemp("report")
    table = report(runs, output)
    assert capsys.readouterr().out.count("fitting hist_gradient_boosting") == 1
    rows = {(row["model"], row["experiment"]): row for row in table}
    for model in ("random_forest", "hist_gradient_boosting"):
        assert rows[model, "wide"]["test/acc_mean"] == rows[model, "narrow"]["test/acc_mean"] > 0.5
