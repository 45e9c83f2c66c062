"""The Optuna search in storage: a resumed study refuses other settings, and the pruner stops a
trial whose validation curve falls behind (a killed search's resume: tests/e2e/test_search_resume.py)."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import torch

from ids_lightning.core.errors import ConfigError
from ids_lightning.training.search import Pruning, make_pruner, search
from tests.helpers import DATA_DIR

TINY = ["hparams_search=cnn_lstm_optuna", "dataset=bot_iot", "debug=fast_dev_run", "export=none", "logger=none",
        "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]  # fmt: skip


def test_a_study_resumes_only_under_its_own_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("IDS_DATA_DIR", str(DATA_DIR))
    search([*TINY, f"paths.log_dir={tmp_path}", "search.n_trials=1"])
    with pytest.raises(ConfigError, match="other overrides"):
        search([*TINY, f"paths.log_dir={tmp_path}", "search.n_trials=2", "dataset.val_fraction=0.2"])


def test_the_pruner_stops_a_trial_whose_curve_falls_behind():
    study = optuna.create_study(direction="maximize", pruner=make_pruner({"type": "median", "n_startup_trials": 1}))
    earlier = study.ask()
    for epochs, value in enumerate([0.8, 0.9], start=1):
        earlier.report(value, epochs)
    study.tell(earlier, 0.9)

    def epoch_end(trial, value: float, epoch: int) -> None:
        trainer = SimpleNamespace(sanity_checking=False, current_epoch=epoch,
                                  callback_metrics={"val/f1_macro_best": torch.tensor(value)})  # fmt: skip
        Pruning(trial, "val/f1_macro_best").on_validation_end(trainer, None)

    level = study.ask()
    epoch_end(level, 0.85, 0)  # above the median after one epoch (0.8): goes on
    epoch_end(level, 0.95, 1)
    behind = study.ask()
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        epoch_end(behind, 0.5, 0)
    assert behind.user_attrs["epochs"] == 1
    with pytest.raises(ConfigError, match="median, hyperband or none"):
        make_pruner({"type": "asha"})
