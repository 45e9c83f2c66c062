"""A killed Optuna search resumes where it stopped: the killed trial again, in its own folder,
then new parameters; the study holds every trial once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import optuna
import pytest

from ids_lightning.training.config import PROJECT_ROOT
from tests.helpers import DATA_DIR
from tests.integration.test_search import TINY

pytestmark = pytest.mark.slow


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
