"""The fault suite's fast probes (no training): every one ends in a clear error, a counted skip
or a clean run, never a traceback, silent loss or code execution (``make chaos`` runs all)."""

from __future__ import annotations

from tests.helpers import DATA_DIR
from tools.chaos.suite import run_probes


def test_fast_probes_end_clearly_and_account_for_every_row(data_dir):
    result = run_probes(DATA_DIR, fast=True)
    bad = [r for r in result["rows"] if r["outcome"] in ("traceback", "silent_loss", "code_execution")]
    assert not bad, "\n".join(f"{r['tool']} {r['probe']}: {r['outcome']} ({r['detail']})" for r in bad)
    assert not result["unbalanced_rows"]
    assert result["probes"] >= 60
    outcomes = {r["outcome"] for r in result["rows"]}
    assert {"clear_error", "counted_skip", "ok"} <= outcomes
