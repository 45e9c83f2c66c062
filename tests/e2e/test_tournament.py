"""The tournament chooses on validation before it tests anything, and tests only the refits of
its choice (BoT-IoT, two seeds, one epoch: the slow tier)."""

from __future__ import annotations

import json

from ids_lightning.bench import tournament


def test_the_choice_is_written_before_any_test_and_the_refits_are_tested(tmp_path, data_dir):
    arguments = ["--dataset", "bot_iot", "--validation", "random", "--seeds", "1", "2", "--grid", "cpu"]
    rows = tournament.main([*arguments, "--epochs", "1", "--families", "cnn_lstm", "lightgbm",
                            "--runs-dir", str(tmp_path), "--data-dir", str(data_dir)])  # fmt: skip
    folder = tmp_path / "bot_iot" / "random"
    choice = json.loads((folder / "choice.json").read_text())
    written = (folder / "choice.json").stat().st_mtime
    for run in (folder / "choose").glob("*/s*"):
        for name in ("metrics.json", "study.json"):
            if (run / name).is_file():  # a choice run never tested: no test metric exists to choose on
                assert not [k for k in json.loads((run / name).read_text()) if k.startswith("test")], run
    tested = sorted((folder / "refit").glob("*/s*/metrics.json"))
    assert len(tested) == 3 * 2 and all(path.stat().st_mtime > written for path in tested)
    by_family = {row["family"]: row for row in rows}
    assert set(by_family) == {"cnn_lstm", "lightgbm", "hist_gradient_boosting"}
    chosen = max(choice["candidates"], key=lambda c: c["val/f1_macro_mean"])
    assert [row["config"] for row in rows if row["chosen"]] == [chosen["config"]] == [choice["chosen"]]
    assert all(row["test/acc_mean"] > 0.5 for row in rows)  # three classes: above chance
    refit = json.loads(next((folder / "refit" / "cnn_lstm").glob("s1/metrics.json")).read_text())
    assert refit["refit"] and refit["best_epoch"] == refit["epochs_run"] - 1 == 0
    assert (tmp_path / "tournament.md").read_text().count("\n") == 2 + len(rows)
    again = tournament.main([*arguments, "--epochs", "1", "--families", "cnn_lstm", "lightgbm",
                             "--runs-dir", str(tmp_path), "--data-dir", str(data_dir)])  # fmt: skip
    assert again == rows  # finished runs and the written choice are kept
