"""The detector's output appears whole or not at all: a run that fails part-way leaves an earlier
output as it was, and a cut input still ends with what came before the cut."""

from __future__ import annotations

import shutil

import pytest

from ids_lightning.core.errors import DataError
from ids_lightning.edge.detector import detect
from tests.helpers import GOOD, PROJECT_ROOT
from tools.chaos.detector import nan_model

EXAMPLE = PROJECT_ROOT / "examples" / "nsl_kdd_cnn_lstm"


def test_a_failure_part_way_leaves_the_earlier_output(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    flows = tmp_path / "flows.txt"
    flows.write_text((GOOD + "\n") * 50)
    output = tmp_path / "alerts.jsonl"
    assert detect(run, flows, output, progress=False)["records"] == 50
    earlier = output.read_text()
    nan_model(run)  # scores every record NaN: refused at the first chunk
    with pytest.raises(DataError, match="non-finite probabilities"):
        detect(run, flows, output, progress=False)
    assert output.read_text() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "alerts.jsonl",
        "alerts.jsonl.summary.json",
        "flows.txt",
        "run",
    ]
