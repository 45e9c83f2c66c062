"""The floors of the package: no import runs up a floor, no two parts import each other, and the
edge (with the core it stands on) imports with torch, Lightning or Hydra missing."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ids_lightning.training.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "ids_lightning"
# Part -> floor, from the ground up. A part may import its own floor and those below.
FLOORS = {
    "ids_lightning.core": 1,  # torch-free: errors, file I/O, tables, readers, splits, preprocessing, spec, metrics
    "ids_lightning.datasets": 2,  # one spec per dataset, torch-free
    "ids_lightning.edge": 3,  # numpy + onnxruntime: runtime, detector, latency bench
    "ids_lightning.models": 4,  # training side from here on: nets, the LightningModule, batches
    "ids_lightning.evaluation": 4,  # plots, unseen attack types
    "ids_lightning.data": 5,  # the datamodule, its options, tables, stream; Parquet preparation
    "ids_lightning.training": 6,  # the engine: one run, seeds, export, callbacks, run folders, search
    "ids_lightning.federation": 7,  # Flower sites, server, apps, deployment processes
    "ids_lightning.analysis": 7,  # over finished runs: report, baselines, ensembles, attacks, the demo
    "ids_lightning.launch": 8,  # which kind of run a config asks for
    "ids_lightning.bench": 8,  # benchmarks
    "ids_lightning.cli": 9,  # the commands: parse arguments, call the library
    "ids_lightning.__main__": 9,  # python -m ids_lightning <command>
}
GROUND = ("ids_lightning.core", "ids_lightning.datasets", "ids_lightning.edge")
# What the ground floors may import at module level besides the standard library and themselves.
GROUND_THIRD_PARTY = {"numpy"}


def module_name(path: Path) -> str:
    parts = path.with_suffix("").parts
    parts = parts[len(parts) - 1 - parts[::-1].index("ids_lightning") :]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str | None:
    return max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len, default=None)


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Modules imported by a file (``from x import y`` counts y when x.y is a module of ours)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if part_of(f"{node.module}.{alias.name}")}
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def edges() -> set[tuple[str, str, str]]:
    """(importing part, imported part, importing module) for every import between our parts."""
    out = set()
    for path in SOURCES:
        source = module_name(path)
        for target in imports(path):
            if target.startswith("ids_lightning") and None is not part_of(source) != part_of(target) is not None:
                out.add((part_of(source), part_of(target), source))
    return out


def test_every_module_has_a_floor():
    unplaced = [
        module_name(p) for p in SOURCES if module_name(p) != "ids_lightning" and part_of(module_name(p)) is None
    ]
    assert not unplaced, f"give these a floor in FLOORS: {unplaced}"


def test_no_import_runs_up_a_floor():
    upward = sorted(
        f"{m} imports {b} (floor {FLOORS[b]} > {FLOORS[a]})" for a, b, m in edges() if FLOORS[b] > FLOORS[a]
    )
    assert not upward, "\n".join(upward)


def test_no_two_parts_import_each_other():
    pairs = {(a, b) for a, b, _ in edges()}
    loops = sorted(f"{a} <-> {b}" for a, b in pairs if (b, a) in pairs and a < b)
    assert not loops, loops


def test_the_checks_have_teeth(tmp_path, monkeypatch):
    """A planted upward import (core -> models) and a planted loop are both caught."""
    planted = tmp_path / "ids_lightning" / "core" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("from ids_lightning.models import nets\n")
    looped = tmp_path / "ids_lightning" / "analysis" / "planted.py"
    looped.parent.mkdir(parents=True)
    looped.write_text("from ids_lightning.federation import site\n")
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", [*SOURCES, planted])
    with pytest.raises(AssertionError, match=r"ids_lightning\.core\.planted imports ids_lightning\.models"):
        test_no_import_runs_up_a_floor()
    back = tmp_path / "ids_lightning" / "federation" / "planted.py"
    back.parent.mkdir(parents=True)
    back.write_text("import ids_lightning.analysis.report\n")
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", [*SOURCES, looped, back])
    with pytest.raises(AssertionError, match=r"ids_lightning\.analysis <-> ids_lightning\.federation"):
        test_no_two_parts_import_each_other()


def test_ground_floors_import_only_numpy_and_the_standard_library_at_module_level():
    allowed = set(sys.stdlib_module_names) | GROUND_THIRD_PARTY | {"ids_lightning", "__future__"}
    offenders = {}
    for path in SOURCES:
        if module_name(path).startswith(GROUND):
            outside = {m.split(".")[0] for m in imports(path, top_level_only=True)} - allowed
            if outside:
                offenders[module_name(path)] = sorted(outside)
    assert not offenders, offenders


EDGE_MODULES = [
    "ids_lightning.edge.runtime",
    "ids_lightning.edge.detector",
    "ids_lightning.edge.latency",
    "ids_lightning.cli.detect",
    "ids_lightning.cli.edge_bench",
]


@pytest.mark.parametrize("blocked", ["torch", "lightning", "hydra", "omegaconf", "pandas", "pyarrow"])
def test_edge_imports_and_answers_help_without(blocked):
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == {blocked!r}:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        for name in {EDGE_MODULES!r}:
            module = importlib.import_module(name)
        for name in ("ids_lightning.cli.detect", "ids_lightning.cli.edge_bench"):
            try:
                importlib.import_module(name).main(["--help"])
            except SystemExit as done:
                assert done.code == 0, done.code
        assert {blocked!r} not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--input" in result.stdout and "--batches" in result.stdout
