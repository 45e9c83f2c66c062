"""Every documented command answers ``--help`` (in one process: one import of torch)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ids_lightning.training.config import PROJECT_ROOT

COMMANDS = [
    "ids_lightning.cli.detect",
    "ids_lightning.edge.detector",
    "ids_lightning.edge.latency",
    "ids_lightning.data.prepare",
    "ids_lightning.cli.export",
    "ids_lightning.analysis.attack",
    "ids_lightning.analysis.report",
    "ids_lightning.bench.train",
    "ids_lightning.bench.parse",
    "ids_lightning.bench.edge_torch",
    "ids_lightning.bench.detector",
    "ids_lightning.bench.adversarial_training",
    "ids_lightning.bench.scale",
    "ids_lightning.bench.windows",
    "ids_lightning.bench.ablation",
    "ids_lightning.bench.novelty",
    "ids_lightning.bench.results",
    "tools.chaos",
    "ids_lightning.analysis.demo",
    "ids_lightning.analysis.baseline",
    "ids_lightning.analysis.ensemble",
    "ids_lightning.federation.deployment",
]


def test_every_documented_command_answers_help():
    script = textwrap.dedent(f"""
        import contextlib, importlib, io
        for name in {COMMANDS!r}:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    importlib.import_module(name).main(["--help"])
                except SystemExit as done:
                    assert done.code == 0, (name, done.code)
            assert "usage:" in out.getvalue(), name
            print("ok", name)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [word for name in COMMANDS for word in ("ok", name)]


def test_ids_lists_every_tool_and_runs_them(capsys):
    from ids_lightning.cli import COMMANDS, main

    main(["--help"])
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in COMMANDS)
    with pytest.raises(SystemExit) as info:
        main(["detect", "--help"])
    assert info.value.code == 0 and "--chunk-rows" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown command 'trian'"):
        main(["trian"])
