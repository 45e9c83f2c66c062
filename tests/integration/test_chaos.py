"""The fault suite, as CI runs it: the torch-free commands (``ids detect``, ``ids prepare``) in
their own processes against every fault the suite has for them; each ends in a clear error, a
counted skip or a clean run (``make chaos`` runs every tool's probes, training included). And
the judge itself: each bad outcome is recognised."""

from __future__ import annotations

import pytest

from tests.helpers import DATA_DIR
from tools.chaos.lab import BAD, Call, Probe, judge
from tools.chaos.suite import run_probes


def test_detect_and_prepare_end_every_fault_clearly_and_account_for_every_row(data_dir):
    result = run_probes(DATA_DIR, fast=True, tools=["detect", "prepare"], jobs=2)
    bad = [r for r in result["rows"] if r["outcome"] in BAD]
    assert not bad, "\n".join(f"{r['tool']} {r['probe']}: {r['outcome']} ({r['detail']})" for r in bad)
    assert not result["unbalanced_rows"]
    assert result["probes"] >= 120
    assert {"clear_error", "counted_skip", "ok"} <= {r["outcome"] for r in result["rows"]}


def refusing(refuse: bool = True) -> Probe:
    return Probe("p", "detect", lambda ws: Call([]), refuse)


COUNTED = {"rows_out": 9, "rows_skipped": 1}


@pytest.mark.parametrize(
    ("probe", "call", "status", "stdout", "stderr", "outcome"),
    [
        (refusing(), Call([], names=("a.csv",)), 2, "", "ids detect: error: a.csv:3: bad\n", "clear_error"),
        (refusing(), Call([], names=("a.csv",)), 2, "", "ids detect: error: line 3 is bad\n", "vague_error"),
        (refusing(), Call([], names=("a.csv",)), 2, "a.csv rows 0/?", "ids detect: error: bad\n", "vague_error"),
        (refusing(), Call([]), 1, "", "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n", "traceback"),
        (refusing(), Call([]), -9, "", "", "crash"),
        (refusing(), Call([]), None, "", "", "hang"),
        (refusing(), Call([], 10, count=lambda: COUNTED), 0, "", "", "silent_loss"),
        (refusing(False), Call([], 10, count=lambda: COUNTED), 2, "", "ids detect: error: x\n", "silent_loss"),
        (refusing(False), Call([], 11, count=lambda: COUNTED), 0, "", "", "silent_loss"),
        (refusing(False), Call([], 10, count=lambda: COUNTED), 0, "", "", "counted_skip"),
        (refusing(False), Call([], 10, count=lambda: COUNTED, verify=lambda: "a formula"), 0, "", "", "unsafe_output"),
        (refusing(), Call([], names=("x.gz",)), 3, "stopped early: x.gz: the file ends early\n", "", "clear_error"),
    ],
)
def test_the_judge_tells_each_outcome(probe, call, status, stdout, stderr, outcome):
    assert judge(probe, call, status, stdout, stderr)["outcome"] == outcome
