"""Every command answers ``--help`` with status 0 (in one process: one import of torch), and
``ids`` lists them, refuses an unknown one with status 2 and returns statuses, never results."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ids_lightning.cli import COMMANDS, main
from ids_lightning.cli.bench import BENCHES
from ids_lightning.core.errors import REFUSED, DataError, exit_status
from ids_lightning.training.config import PROJECT_ROOT

MODULES = [f"ids_lightning.cli.{module}" for module, _ in COMMANDS.values()]
MODULES += [f"ids_lightning.bench.{name}" for name in BENCHES] + ["tools.chaos.suite"]


def test_every_command_answers_help():
    script = textwrap.dedent(f"""
        import contextlib, importlib, io
        for name in {MODULES!r}:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    status = importlib.import_module(name).main(["--help"])
                except SystemExit as done:
                    status = done.code
            assert status in (0, None), (name, status)
            assert ("usage:" if name != "ids_lightning.cli.train" else "powered by Hydra") in out.getvalue(), name
            print("ok", name)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [word for name in MODULES for word in ("ok", name)]


def test_ids_lists_every_command_and_refuses_an_unknown_one(capsys):
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in COMMANDS)
    assert main(["trian"]) == REFUSED
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_a_command_exits_with_its_status_and_one_line_for_a_refusal(capsys):
    assert exit_status(lambda argv: None, []) == 0
    assert exit_status(lambda argv: 3, []) == 3
    assert exit_status(lambda argv: {"rows": 3}, []) == 0  # a bench returns its results

    def refuses(argv):
        raise DataError("x.csv:3: not a flow")

    assert exit_status(refuses, [], "ids detect") == REFUSED
    assert capsys.readouterr().err == "ids detect: error: x.csv:3: not a flow\n"


def test_python_m_ids_lightning_runs_a_command():
    result = subprocess.run(
        [sys.executable, "-m", "ids_lightning", "bench", "--help"], capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    assert result.returncode == 0 and "usage: ids bench" in result.stdout


def test_detect_refuses_more_threads_than_four_per_core(capsys):
    with pytest.raises(SystemExit) as info:
        main(["detect", "--run", "r", "--input", "i", "--threads", "100000"])
    assert info.value.code == 2 and "four per core" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [("--threads", "100000", "four per core"), ("--batches", "0", "at least 1"), ("--seconds", "-1", "positive")],
)
def test_edge_bench_refuses_settings_that_hang_or_crash_its_workers(capsys, option, value, says):
    """--threads 100000 stalled the bench and --batches 0 killed its worker (status -6)."""
    with pytest.raises(SystemExit) as info:
        main(["edge-bench", "r", option, value])
    assert info.value.code == 2 and option in capsys.readouterr().err
