"""A run killed after its fit (during export, test or the metrics write) is completed by the
next run of the same command, with the numbers of an uninterrupted run; never broken for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ids_lightning.analysis.ensemble import ensemble
from ids_lightning.launch import launch
from ids_lightning.training.config import PROJECT_ROOT, compose
from tests.helpers import DATA_DIR, SMALL_RUN, comparable

RUN = [o for o in SMALL_RUN if o != "export=none"] + ["trainer.max_epochs=2"]
# Each stage's hook is replaced by a SIGKILL of the process itself: (module, attribute).
KILLS = {
    "export": ("ids_lightning.training.export", "export_run"),
    "test": ("ids_lightning.models.module", "IDSLitModule.on_test_epoch_end"),
    "metrics": ("ids_lightning.training.run", "run_facts"),
}


def run(folder, kill: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
    patch = ""
    if kill:
        module, attribute = kill
        *owners, name = attribute.split(".")
        patch = f"""
            import functools, importlib, os, signal
            owner = functools.reduce(getattr, {owners!r}, importlib.import_module({module!r}))
            setattr(owner, {name!r}, lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL))
        """
    script = textwrap.dedent(patch) + textwrap.dedent(f"""
        import sys
        sys.argv = ["train.py", *{[*RUN, f"hydra.run.dir={folder}"]!r}]
        from ids_lightning.cli.train import main
        main()
    """)
    env = {**os.environ, "IDS_DATA_DIR": str(DATA_DIR), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    result = run(folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((folder / "metrics.json").read_text())


@pytest.mark.parametrize("stage", sorted(KILLS))
def test_a_run_killed_after_fit_is_completed_by_the_next_run(tmp_path, reference, stage):
    killed = run(tmp_path, KILLS[stage])
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (tmp_path / "metrics.json").exists() and (tmp_path / "fit.json").is_file()
    again = run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    expected = comparable(reference)
    assert set(comparable(metrics)) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert metrics[key] == pytest.approx(value, abs=1e-6), key
        else:
            assert metrics[key] == value, key
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "confusion_matrix.png").is_file()


def test_an_interrupted_batched_run_completes_without_fitting_again(tmp_path, nsl_kdd_slice):
    overrides = ["debug=limit", "trainer.max_epochs=2", "export=none", "logger=none", "seeds=[3,4]"]
    first = launch(compose(overrides, tmp_path, data_dir=nsl_kdd_slice))
    last = tmp_path / "checkpoints" / "last.ckpt"
    fitted_at = last.stat().st_mtime_ns
    (tmp_path / "replicas.json").unlink()
    (tmp_path / "seed_4" / "metrics.json").unlink()  # killed while seed 4 was being tested
    again = launch(compose(overrides, tmp_path, data_dir=nsl_kdd_slice))
    assert last.stat().st_mtime_ns == fitted_at
    assert again["test/acc"] == pytest.approx(first["test/acc"])
    assert json.loads((tmp_path / "seed_4" / "metrics.json").read_text())["seed"] == 4
    # the folder feeds an ensemble of its seeds, scored on validation too (one split)
    metrics = ensemble([tmp_path], tmp_path.parent / "ensemble")
    assert metrics["test/acc"] > 0.5 and "val/acc" in metrics
