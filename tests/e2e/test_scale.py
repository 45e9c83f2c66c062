"""Out of core, memory does not grow with the rows: a scan and an epoch over 1 and 3 million
IoT-23 rows (the bench's repeated captures) peak at the same RSS, each in a fresh process."""

from __future__ import annotations

import pytest

from ids_lightning.bench.common import measure
from ids_lightning.bench.scale import VAL_CAPTURE, build

pytestmark = pytest.mark.slow

EPOCH = """
from ids_lightning.training.config import compose, instantiate
cfg = compose(["dataset=iot23", "dataset.files=[base/*.parquet,copies_*.parquet]", "dataset.in_memory=false",
               "dataset.val_split=by_capture", "dataset.val_partitions=[{val}]"], {run!r}, data_dir={folder!r})
datamodule = instantiate(cfg.dataset, output_dir=None)
datamodule.setup()
rows = sum(len(chunk) for chunk in datamodule.train_dataloader())  # every training row, once
assert rows == sum(chunk.rows for chunk in datamodule.stream[0]), rows
"""


def test_peak_memory_is_flat_from_one_to_three_million_rows(tmp_path, data_dir):
    peaks = {}
    for rows in (1_000_000, 3_000_000):
        folder = tmp_path / f"rows_{rows}"
        build(rows, folder, data_dir)
        result = measure(EPOCH.format(val=VAL_CAPTURE, run=str(tmp_path / "run"), folder=str(folder)))
        assert result["rows"] > 0.98 * rows  # all but the validation and test captures train
        peaks[rows] = result["peak_rss_mb"]
    assert peaks[3_000_000] < 1.2 * peaks[1_000_000], peaks
