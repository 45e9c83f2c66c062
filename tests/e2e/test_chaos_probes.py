"""The fault suite's torch-free commands (``ids detect``, ``ids prepare``) in their own processes
against every fault the suite has for them; each ends in a clear error, a counted skip or a clean
run (``make chaos`` runs every tool's probes, training included). About a minute: the slow tier."""

from __future__ import annotations

from tests.helpers import DATA_DIR
from tools.chaos.lab import BAD
from tools.chaos.suite import run_probes


def test_detect_and_prepare_end_every_fault_clearly_and_account_for_every_row(data_dir):
    result = run_probes(DATA_DIR, fast=True, tools=["detect", "prepare"], jobs=2)
    bad = [r for r in result["rows"] if r["outcome"] in BAD]
    assert not bad, "\n".join(f"{r['tool']} {r['probe']}: {r['outcome']} ({r['detail']})" for r in bad)
    assert not result["unbalanced_rows"]
    assert result["probes"] >= 120
    assert {"clear_error", "counted_skip", "ok"} <= {r["outcome"] for r in result["rows"]}
