"""The report puts classical baselines beside every deep row, fitting those a sweep lacks once."""

from __future__ import annotations

import json

from ids_lightning.report import report
from tests.helpers import SMALL_RUN, trained_run


def test_the_report_fits_missing_baselines_on_the_runs_rows_once(tmp_path_factory, capsys):
    folder, metrics = trained_run(tmp_path_factory, "deep", *SMALL_RUN, "trainer.max_epochs=1")
    table = report([folder])
    by_model = {row["model"]: row for row in table}
    assert set(by_model) == {"cnn", "random_forest", "hist_gradient_boosting"}
    for model in ("random_forest", "hist_gradient_boosting"):
        fitted = json.loads(next((folder / "baselines").glob(f"*/{model}/metrics.json")).read_text())
        # the deep run's rows: same dataset, split, seed, classes and test class counts
        for key in ("dataset", "split", "seed", "class_names", "window"):
            assert fitted[key] == metrics[key]
        assert fitted["class_counts"]["test"] == metrics["class_counts"]["test"]
        assert by_model[model]["test/acc_mean"] == fitted["test/acc"] > 0.5
    assert "fitting random_forest" in capsys.readouterr().out
    again = report([folder])  # the sweep now holds them: nothing is fitted twice
    assert "fitting" not in capsys.readouterr().out
    assert {row["model"]: row["n_seeds"] for row in again} == {m: 1 for m in by_model}
