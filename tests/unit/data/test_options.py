"""The dataset settings are checked once, before any file is read: unknown keys, counts that
train nothing, shares outside their range, windows past the detector's limit."""

from __future__ import annotations

import pytest

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.windows import MAX_WINDOW
from ids_lightning.data.options import DataOptions

BASE = {"spec": "nsl_kdd", "data_dir": "/nowhere", "files": ["nsl_kdd/KDDTrain+.txt"], "task": "family"}
BASE |= {"split": "random"}


def options(**settings) -> DataOptions:
    return DataOptions.from_settings(**{**BASE, **settings})


def test_settings_are_grouped_and_the_order_seed_defaults_to_the_split_seed():
    checked = options(seed=7, batch_size=128, window=1, in_memory=False)
    assert checked.split.seed == 7 and checked.loader.shuffle_seed == 7
    assert checked.loader.batch_size == 128 and checked.loader.in_memory == "false"
    assert options(shuffle_seed=[1, 2]).loader.shuffle_seed == (1, 2)


def test_an_unknown_key_names_the_closest_real_one():
    with pytest.raises(ConfigError, match="'batchsize' \\(did you mean 'batch_size'\\?\\)"):
        options(batchsize=64)
    with pytest.raises(ConfigError, match="missing: \\['task'\\]"):
        DataOptions.from_settings(**{k: v for k, v in BASE.items() if k != "task"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch_size", 0),
        ("batch_size", -64),
        ("batch_size", 1.5),
        ("batch_size", True),
        ("eval_batch_size", 0),
        ("steps_per_chunk", 0),
        ("shuffle_buffer", 0),
        ("k_neighbors", 0),
        ("device_memory_fraction", 0),
        ("device_memory_fraction", 1.5),
        ("device_memory_fraction", float("nan")),
        ("val_fraction", 1.5),
        ("test_fraction", 0),
        ("in_memory", "maybe"),
    ],
)
def test_values_that_serve_nothing_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"dataset.{key}"):
        options(**{key: value})


def test_fractions_that_leave_no_training_rows_are_refused():
    with pytest.raises(ConfigError, match="below 1"):
        options(val_fraction=0.5, test_fraction=0.5)


@pytest.mark.parametrize("window", [0, MAX_WINDOW + 1, 100_000])
def test_windows_past_the_detectors_limit_are_refused_before_reading(window):
    with pytest.raises(ConfigError, match=f"from 1 to {MAX_WINDOW}"):
        options(spec="iot23", files=["iot23/*.labeled"], task="binary", window=window)
