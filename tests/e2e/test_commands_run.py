"""Every command run for real on tiny inputs, as a user runs it: exit status 0 and the files it
promises (``ids demo`` and the deployment processes of ``ids federated`` run in the e2e tier:
``tests/e2e/test_console.py``, ``tests/e2e/test_federated_deployment.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ids_lightning.cli import main
from ids_lightning.core.errors import REFUSED
from tests.helpers import NSL_KDD_TEST, PROJECT_ROOT, QUIET

pytestmark = pytest.mark.slow  # every command run for real, several as processes: the e2e tier

TINY = ["debug=limit", "trainer.max_epochs=1", "model=cnn", "dataset.download=false", *QUIET]


def ids(*args: str, data_dir: Path | None = None, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    """``python -m ids_lightning ARGS`` in a process of its own, as from the shell."""
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", **({"IDS_DATA_DIR": str(data_dir)} if data_dir else {})}
    return subprocess.run(
        [sys.executable, "-m", "ids_lightning", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory, nsl_kdd_slice) -> Path:
    """Two seeds trained together by ``ids train``: two finished run folders."""
    folder = tmp_path_factory.mktemp("seeds")
    done = ids("train", *TINY, "seeds=[1,2]", f"hydra.run.dir={folder}", data_dir=nsl_kdd_slice)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not done.stderr.strip().splitlines()[-1].startswith("{"), "a command prints no result dict"
    return folder


def test_train_writes_two_finished_runs(seeds_run):
    for seed in (1, 2):
        assert (seeds_run / f"seed_{seed}" / "metrics.json").is_file()
        assert (seeds_run / f"seed_{seed}" / "model.onnx").is_file()
    assert json.loads((seeds_run / "replicas.json").read_text())["seeds"] == [1, 2]


def test_detect_exits_0_in_its_own_process_and_2_on_a_refusal(seeds_run, tmp_path):
    output = tmp_path / "alerts.jsonl"
    done = ids(
        "detect", "--run", str(seeds_run / "seed_1"), "--input", str(NSL_KDD_TEST), "--output", str(output), "--all",
        "--no-explain",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert sum(1 for _ in output.open()) == 22_544 and "records scored" in done.stdout
    refused = ids("detect", "--run", str(tmp_path / "nowhere"), "--input", str(NSL_KDD_TEST), "--output", str(output))
    assert refused.returncode == REFUSED and refused.stderr.count("\n") == 1, refused.stderr
    assert "Traceback" not in refused.stderr


def test_each_command_on_a_finished_run(seeds_run, nsl_kdd_slice, tmp_path, capsys):
    run_dir, data = seeds_run / "seed_1", str(nsl_kdd_slice)
    assert main(["export", str(run_dir), "--data-dir", data]) == 0
    assert "onnx/parity_ok: True" in capsys.readouterr().out
    attack = ["attack", str(run_dir), "--data-dir", data, "--max-rows", "64", "--attacks", "fgsm", "--eps", "0.1"]
    assert main(attack) == 0
    assert "test_adv/fgsm/eps_0.1/acc: " in capsys.readouterr().out
    bench = [
        "edge-bench",
        str(run_dir),
        "--batches",
        "1",
        "--threads",
        "1",
        "--latency-calls",
        "20",
        "--seconds",
        "0.05",
    ]
    assert main(bench) == 0 and (run_dir / "bench.json").is_file()
    assert main(["ensemble", str(seeds_run), "--output", str(tmp_path / "ensemble"), "--data-dir", data]) == 0
    assert (tmp_path / "ensemble" / "model.onnx").is_file()
    assert main(["report", str(seeds_run), "--no-baselines", "--output", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.md").is_file()
    assert main(["bench", "results", "--output", str(tmp_path / "results.md")]) == 0
    assert (tmp_path / "results.md").stat().st_size > 0


def test_prepare_baseline_and_search(nsl_kdd_slice, tmp_path, monkeypatch, capsys):
    source = nsl_kdd_slice / "nsl_kdd" / "KDDTest+.txt"
    assert main(["prepare", str(source), "--output", str(tmp_path / "parquet")]) == 0
    assert (tmp_path / "parquet" / "KDDTest+.parquet").is_file()
    monkeypatch.setenv("IDS_DATA_DIR", str(nsl_kdd_slice))
    assert main(["baseline", "--output", str(tmp_path / "baseline"), "dataset.download=false"]) == 0
    assert len(list((tmp_path / "baseline").glob("*/metrics.json"))) == 2  # random forest, gradient boosting
    search = ["search", "hparams_search=cnn_lstm_optuna", "search.n_trials=1", *TINY, "model=cnn_lstm"]
    assert main([*search, f"paths.log_dir={tmp_path}"]) == 0
    assert "best val/f1_macro_best" in capsys.readouterr().out


def test_a_refused_run_is_one_line_and_status_2_and_adds_nothing_to_the_other_runs_folder(seeds_run, nsl_kdd_slice):
    """Hydra wrote its record (.hydra/<start>/) and its log before the checks; the run writes them now."""
    (record,) = (seeds_run / ".hydra").iterdir()
    before = {path: path.read_bytes() for path in seeds_run.rglob("*") if path.is_file() and path.name != ".lock"}
    again = [*TINY, "seeds=[1,2]", "model=lstm", f"hydra.run.dir={seeds_run}"]  # another model, same folder
    refused = ids("train", *again, data_dir=nsl_kdd_slice)
    assert refused.returncode == REFUSED and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("ids train: error: ") and "model.net._target_" in refused.stderr
    after = {path: path.read_bytes() for path in seeds_run.rglob("*") if path.is_file() and path.name != ".lock"}
    assert after == before and (record / "overrides.yaml").is_file() and (seeds_run / "train.log").is_file()
