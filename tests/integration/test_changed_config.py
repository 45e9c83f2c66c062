"""A run folder belongs to one config: a re-run with another model or data is refused, naming
what differs, before anything is written (finished or not); it goes on only when asked."""

from __future__ import annotations

import pytest

from ids_lightning.core.errors import ConfigError
from ids_lightning.launch import launch
from ids_lightning.training.config import compose
from tests.helpers import QUIET

TINY = ["debug=fast_dev_run", "export=none", "model=cnn", "dataset.download=false", *QUIET]


def test_a_folder_refuses_a_run_of_another_config(tmp_path, nsl_kdd_slice):
    folder = tmp_path / "run"
    first = launch(compose(TINY, folder, data_dir=nsl_kdd_slice))
    saved = (folder / "config.yaml").read_bytes()
    for changed, named in (("model=lstm", "model.net._target_"), ("dataset.task=binary", "dataset.task")):
        with pytest.raises(ConfigError, match=f"another config \\(.*{named.replace('.', '[.]')}"):
            launch(compose([*TINY, changed], folder, data_dir=nsl_kdd_slice))
        assert (folder / "config.yaml").read_bytes() == saved  # the other run's files untouched
    again = launch(compose(TINY, folder, data_dir=nsl_kdd_slice))  # the same config: finished, skipped
    assert again == first
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "nsl_kdd").symlink_to(nsl_kdd_slice / "nsl_kdd")
    assert launch(compose(TINY, folder, data_dir=moved)) == first  # where the data lives may change


def test_allow_changed_config_goes_on_under_the_new_config(tmp_path, nsl_kdd_slice):
    folder = tmp_path / "run"
    launch(compose([*TINY, "skip_finished=false"], folder, data_dir=nsl_kdd_slice))
    changed = [*TINY, "skip_finished=false", "model=lstm", "allow_changed_config=true"]
    metrics = launch(compose(changed, folder, data_dir=nsl_kdd_slice))
    assert metrics["model"] in ("lstm", "LSTM")
    assert "LSTM" in (folder / "config.yaml").read_text()
