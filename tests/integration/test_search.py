"""The Optuna search in storage: a killed search resumes where it stopped (the killed trial again,
in its own folder, then new parameters), a resumed study refuses other settings, and the pruner
stops a trial whose validation curve falls behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import optuna
import pytest
import torch

from ids_lightning.core.errors import ConfigError
from ids_lightning.training.config import PROJECT_ROOT
from ids_lightning.training.search import Pruning, make_pruner, search
from tests.helpers import DATA_DIR

TINY = ["hparams_search=cnn_lstm_optuna", "dataset=bot_iot", "debug=fast_dev_run", "export=none", "logger=none",
        "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]  # fmt: skip


def run_search(log_dir, *overrides: str, kill_at_trial: int | None = None) -> subprocess.CompletedProcess:
    """``ids search`` in a process of its own, killed (SIGKILL) when trial ``kill_at_trial`` starts training."""
    patch = ""
    if kill_at_trial is not None:
        patch = f"""
            import os, signal
            import ids_lightning.training.run as run
            calls, train = [], run.train
            def killing(*args, **kwargs):
                calls.append(1)
                if len(calls) > {kill_at_trial}:
                    os.kill(os.getpid(), signal.SIGKILL)
                return train(*args, **kwargs)
            run.train = killing
        """
    script = textwrap.dedent(patch) + textwrap.dedent(f"""
        from ids_lightning.cli.search import main
        raise SystemExit(main({[*TINY, f"paths.log_dir={log_dir}", *overrides]!r}))
    """)
    env = {**os.environ, "IDS_DATA_DIR": str(DATA_DIR), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)


def test_a_killed_search_resumes_where_it_stopped(tmp_path):
    killed = run_search(tmp_path, "search.n_trials=3", kill_at_trial=1)
    assert killed.returncode == -9, killed.stderr[-3000:]
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.load_study(study_name="cnn_lstm_bot_iot", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]
    killed_params = study.trials[1].params

    resumed = run_search(tmp_path, "search.n_trials=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = optuna.load_study(study_name="cnn_lstm_bot_iot", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]  # 1 before the kill, 2 after
    assert study.trials[2].params == killed_params and study.trials[2].user_attrs["retries"] == 1
    complete = [json.dumps(t.params, sort_keys=True) for t in study.trials if t.state.name == "COMPLETE"]
    assert len(set(complete)) == 3  # a resumed sampler does not propose the first search's trials again
    folder = tmp_path / "search" / "cnn_lstm_bot_iot"
    assert sorted(p.name for p in folder.glob("trial_*")) == ["trial_0", "trial_1", "trial_3"]
    assert all((folder / name / "metrics.json").is_file() for name in ("trial_0", "trial_1", "trial_3"))
    summary = json.loads((folder / "study.json").read_text())
    assert [t["state"] for t in summary["trials"]] == states and summary["epochs_trained"] == 3

    again = run_search(tmp_path, "search.n_trials=3")  # the study is complete: nothing more runs
    assert again.returncode == 0 and len(optuna.load_study(study_name="cnn_lstm_bot_iot", storage=storage).trials) == 4


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
