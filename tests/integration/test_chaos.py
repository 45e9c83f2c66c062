"""The fault suite's judge: each bad outcome is recognised (the probes themselves run in the slow
tier, tests/e2e/test_chaos_probes.py, and in ``make chaos``)."""

from __future__ import annotations

import pytest

from tools.chaos.lab import Call, Probe, judge


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
