"""Probes of ``ids report``: hostile and broken sweep folders. Strings inside a sweep are data:
they never name a file outside ``--output``, never become a formula or a forged table row, and
an interpolation in a saved config is never resolved."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

from tools.chaos.lab import Call, Probe, Workspace

HONEST = {"model": "cnn", "dataset": "nsl_kdd", "split": "official", "seed": 1, "test/acc": 0.75, "test/f1_macro": 0.5}
FORMULA = ("=", "+", "-", "@")


def report_probes() -> list[Probe]:
    def sweep(
        metrics: dict | bytes | None = HONEST,
        config: str | None = None,
        bench: bytes | None = None,
        fifo: str | None = None,
        runs: int = 1,
    ) -> Callable[[Workspace], Path]:
        def make(ws: Workspace) -> Path:
            folder = ws.folder / "sweep"
            for index in range(runs):
                run = folder / str(index)
                run.mkdir(parents=True)
                if isinstance(metrics, dict):
                    (run / "metrics.json").write_text(json.dumps({**metrics, "seed": index + 1}))
                elif metrics is not None:
                    (run / "metrics.json").write_bytes(metrics)
                if config is not None:
                    (run / "config.yaml").write_text(config)
                if bench is not None:
                    (run / "bench.json").write_bytes(bench)
                if fifo is not None:
                    os.mkfifo(run / fifo)
            return folder

        return make

    def probe(
        name: str, build: Callable[[Workspace], Path], refuse: bool, names: tuple[str, ...] = (), **call
    ) -> Probe:
        def make(ws: Workspace) -> Call:
            output = ws.folder / "report"
            made = Call(["report", build(ws), "--output", output, "--no-baselines"], names=names, **call)
            made.verify = lambda: safe_report(output)
            return made

        return Probe(f"report: {name}", "report", make, refuse)

    def traversal(ws: Workspace) -> Path:
        """A dataset name that, after the figure's ``report_`` prefix, climbs from ``--output``
        to the lab's outside folder (the figure needs an evaluation.json)."""
        climb = "/../" + os.path.relpath(ws.lab.outside / "planted", ws.folder / "report")
        folder = sweep({**HONEST, "dataset": climb})(ws)
        evaluation = {"history": [{"val/acc": 0.5, "val/loss": 1.0}], "roc": {"normal": {"fpr": [0, 1], "tpr": [0, 1]}}}
        (folder / "0" / "evaluation.json").write_text(json.dumps(evaluation))
        return folder

    def output_is_a_file(ws: Workspace) -> Call:
        (ws.folder / "report").write_text("a file")
        return Call(["report", sweep()(ws), "--output", ws.folder / "report", "--no-baselines"], names=("report",))

    deep = b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    return [
        probe("one honest run", sweep(), False),
        probe("three seeds", sweep(runs=3), False),
        probe("metrics.json not JSON", sweep(b"{oops"), True, ("metrics.json",)),
        probe("metrics.json a list", sweep(b"[1, 2]"), True, ("metrics.json",)),
        probe("metrics.json with a key twice", sweep(b'{"model": "cnn", "model": "lstm"}'), True, ("metrics.json",)),
        probe("metrics.json nested 100,000 deep", sweep(deep), True, ("metrics.json",)),
        probe("metrics.json of 65 MB", sweep(b'{"x": "' + b"y" * (65 << 20) + b'"}'), True, ("metrics.json",)),
        probe("metrics.json is a FIFO", sweep(None, fifo="metrics.json"), True, ("metrics.json",)),
        probe("no runs", sweep(None), True, ("sweep",)),
        probe("a dataset name that climbs out of --output", traversal, False),
        probe(
            "a model name that is a spreadsheet formula",
            sweep({**HONEST, "model": '=HYPERLINK("http://x","y")'}),
            False,
        ),
        probe("a model name that forges a Markdown row", sweep({**HONEST, "model": "cnn |\n| forged | row"}), False),
        probe(
            "tags that copy an environment variable",
            sweep(dict(HONEST), config="tags: ['${oc.env:IDS_CHAOS_SECRET}']\n"),
            False,
        ),
        probe("tags with an unknown resolver", sweep(dict(HONEST), config="tags: ['${nothere:x}']\n"), False),
        probe("tags that are not strings", sweep(dict(HONEST), config="tags: [{a: 1}]\n"), True, ("config.yaml",)),
        probe(
            "config.yaml an alias bomb",
            sweep(dict(HONEST), config="a: &a [x, x]\nb: [*a, *a]\n"),
            True,
            ("config.yaml",),
        ),
        probe("config.yaml is a FIFO", sweep(dict(HONEST), fifo="config.yaml"), True, ("config.yaml",)),
        probe(
            "metrics with NaN and text where numbers go",
            sweep({**HONEST, "test/acc": float("nan"), "test/f1_macro": "high"}),
            False,
        ),
        probe("bench.json not JSON", sweep(bench=b"{no"), True, ("bench.json",)),
        probe("bench.json results not a list", sweep(bench=b'{"results": 3}'), True, ("bench.json",)),
        Probe("report: --output is a regular file", "report", output_is_a_file, True),
    ]


def safe_report(output: Path) -> str | None:
    """What is unsafe in a written report: a CSV cell a spreadsheet runs as a formula, a Markdown
    table with more rows than the CSV (a forged row), a file outside ``output``."""
    with open(output / "report.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    formulas = [value for row in rows for value in row.values() if value.startswith(FORMULA) and not _number(value)]
    if formulas:
        return f"report.csv cells start formulas: {formulas[:2]}"
    table = [line for line in (output / "report.md").read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    if len(table) != len(rows) + 2:
        return f"report.md has {len(table) - 2} table rows for {len(rows)} CSV rows"
    return None


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
