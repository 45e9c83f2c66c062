"""The ``dataset.*`` settings as one typed options object, checked once, before any file is read.

scikit-learn's rule: the datamodule's constructor only stores its options; they are validated
here and the data is computed in ``setup``. The flat keys of ``conf/dataset/*.yaml`` are grouped
by what they decide: where rows come from, how they are split and labelled, what one sample is,
and how batches are served.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ids_lightning.core.errors import ConfigError, check_choice
from ids_lightning.core.spec import DatasetSpec
from ids_lightning.core.splits import VAL_SPLITS, Validation
from ids_lightning.core.windows import check_window
from ids_lightning.data.balance import METHODS as BALANCE_METHODS
from ids_lightning.datasets import get_spec

IN_MEMORY = ("auto", "true", "false")


@dataclass(frozen=True)
class SourceOptions:
    """Where the rows come from: the dataset's spec and its files (glob patterns under
    ``data_dir``: raw files of the dataset or Parquet made by ``ids prepare``)."""

    spec: DatasetSpec
    data_dir: Path
    files: tuple[str, ...]
    test_files: tuple[str, ...] = ()
    read_options: dict = field(default_factory=dict)  # the spec's reader options, defaults filled in
    download: bool = False  # fetch missing files the spec can download (sha256-checked)
    engine: str = "auto"
    bad_rows: str = "error"  # error | skip (and count)


@dataclass(frozen=True)
class SplitOptions:
    """How rows are labelled and cut into train, validation and test."""

    task: str
    split: str
    validation: Validation
    test_partitions: tuple[str, ...] = ()  # the captures (hosts, ...) a partition split tests on
    min_class_count: int | None = None  # rarer labels fold into "other" (tasks learnt from training)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 42  # the split, resampling and preprocessing
    refit: bool = False  # train on the validation rows too (the refit of a configuration chosen on them)


@dataclass(frozen=True)
class SampleOptions:
    """What one training sample is: encoding, scaling, balancing, and the flows around it."""

    categorical: str = "label"
    scaler: str = "minmax"
    clip: bool = True
    balance: str = "none"
    k_neighbors: int = 5
    window: int = 1  # the flow and the window - 1 flows its source host made before it
    context: bool = False  # host-context features over each flow's window


@dataclass(frozen=True)
class LoaderOptions:
    """How batches are served: sizes, training order, device placement, out of core."""

    shuffle_seed: int | tuple[int, ...]  # the training order's seed (one per seed trained together)
    batch_size: int = 64
    eval_batch_size: int = 4096
    steps_per_chunk: int = 16
    device_memory_fraction: float = 0.5
    in_memory: str = "auto"  # auto | true | false (stream the training rows from Parquet)
    shuffle_buffer: int = 262_144


@dataclass(frozen=True)
class DataOptions:
    source: SourceOptions
    split: SplitOptions
    sample: SampleOptions
    loader: LoaderOptions
    output_dir: Path | None = None  # where preprocess.json is written (the run folder)

    @classmethod
    def from_settings(cls, **settings) -> DataOptions:
        """The flat ``dataset.*`` keys, checked: an unknown key, value or combination is one
        ConfigError that names the key."""
        settings = {k: OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig) else v
                    for k, v in settings.items()}  # fmt: skip
        _refuse_unknown(settings)
        spec = get_spec(settings.pop("spec"))
        spec.check(settings["task"], settings["split"])
        shuffle_seed = settings.pop("shuffle_seed", None)
        shuffle_seed = settings.get("seed", 42) if shuffle_seed is None else shuffle_seed
        source = SourceOptions(
            spec=spec,
            data_dir=Path(settings.pop("data_dir")).expanduser().resolve(),
            files=tuple(settings.pop("files")),
            test_files=tuple(settings.pop("test_files", None) or ()),
            read_options=spec.options(settings.pop("read_options", None)),
            **_taken(settings, SourceOptions),
        )
        val_split = settings.pop("val_split", "random")
        check_choice("dataset.val_split", val_split, VAL_SPLITS)
        validation = Validation(
            val_split,
            tuple(settings.pop("val_partitions", None) or ()),
            spec.partition_columns[0] if spec.partition_columns else None,
            benign=spec.benign,
        )
        test_partitions = tuple(settings.pop("test_partitions", None) or ())
        split = SplitOptions(validation=validation, test_partitions=test_partitions, **_taken(settings, SplitOptions))
        sample = SampleOptions(**_taken(settings, SampleOptions))
        if "in_memory" in settings:  # YAML reads true/false as booleans
            settings["in_memory"] = str(settings["in_memory"]).lower()
        loader = LoaderOptions(
            shuffle_seed=tuple(shuffle_seed) if isinstance(shuffle_seed, (list, tuple)) else shuffle_seed,
            **_taken(settings, LoaderOptions),
        )
        output_dir = settings.pop("output_dir", None)
        options = cls(source, split, sample, loader, Path(output_dir) if output_dir else None)
        options.check()
        return options

    def check(self) -> None:
        """Choices, sizes and combinations the datamodule cannot serve, refused before any file
        is read."""
        spec, sample, loader = self.source.spec, self.sample, self.loader
        for key, value in (
            ("batch_size", loader.batch_size),
            ("eval_batch_size", loader.eval_batch_size),
            ("steps_per_chunk", loader.steps_per_chunk),
            ("shuffle_buffer", loader.shuffle_buffer),
            ("k_neighbors", sample.k_neighbors),
        ):
            _check_count(f"dataset.{key}", value)
        share = loader.device_memory_fraction
        if not _is_number(share) or not 0 < share <= 1:
            raise ConfigError(f"dataset.device_memory_fraction must lie in (0, 1], not {share!r}")
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self.split, key)
            if not _is_number(value) or not 0 < value < 1:
                raise ConfigError(f"dataset.{key} must lie strictly between 0 and 1, not {value!r}")
        if self.split.val_fraction + self.split.test_fraction >= 1:
            raise ConfigError("dataset.val_fraction + dataset.test_fraction must be below 1")
        check_choice("dataset.bad_rows", self.source.bad_rows, ("error", "skip"))
        check_choice("dataset.balance", sample.balance, BALANCE_METHODS)
        check_choice("dataset.in_memory", self.loader.in_memory, IN_MEMORY)
        check_window(sample.window, spec)
        if sample.context and sample.window == 1:
            raise ConfigError("dataset.context=true summarises each flow's window: set dataset.window above 1")
        if sample.window > 1 and sample.balance not in ("none", "class_weight"):
            raise ConfigError(
                f"dataset.balance={sample.balance} makes or drops single flows, which breaks windows of "
                "consecutive flows; with dataset.window > 1 use none or class_weight"
            )
        if spec.splits[self.split.split].kind == "test_files" and not self.source.test_files:
            raise ConfigError(f"dataset.split={self.split.split} tests on dataset.test_files: set them")

    @property
    def tests_on_files(self) -> bool:
        return self.source.spec.splits[self.split.split].kind == "test_files"

    @property
    def validates_on_hosts(self) -> bool:
        """Whether validation holds whole captures of a dataset whose flows name a source host
        and a time: the sensor's incident threshold is then calibrated on them (a random share
        of rows would thin every host's windows)."""
        spec = self.source.spec
        return self.split.validation.kind == "by_capture" and bool(spec.host_column and spec.time_column)

    @property
    def keeps_flow_ids(self) -> bool:
        """Whether rows keep their ids, hosts and times: windows and host-level validation read them."""
        return self.sample.window > 1 or self.validates_on_hosts


SETTINGS = {
    "spec", "data_dir", "files", "test_files", "read_options", "val_split", "val_partitions", "test_partitions",
    "shuffle_seed", "output_dir",
    *(f.name for group in (SourceOptions, SplitOptions, SampleOptions, LoaderOptions) for f in fields(group)),
} - {"validation"}  # fmt: skip


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_count(key: str, value: object) -> None:
    """A whole number of at least 1 (a count of rows, batches or neighbours)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{key} must be a whole number of at least 1, not {value!r}")


def _taken(settings: dict, group: type) -> dict:
    """The settings that are fields of ``group``, removed from ``settings``."""
    return {f.name: settings.pop(f.name) for f in fields(group) if f.name in settings}


def _refuse_unknown(settings: dict) -> None:
    unknown = sorted(set(settings) - SETTINGS)
    if unknown:
        close = {key: difflib.get_close_matches(key, sorted(SETTINGS), n=1) for key in unknown}
        hints = [f"{key!r}" + (f" (did you mean {close[key][0]!r}?)" if close[key] else "") for key in unknown]
        raise ConfigError(f"unknown dataset settings: {', '.join(hints)}")
    missing = sorted({"spec", "data_dir", "files", "task", "split"} - set(settings))
    if missing:
        raise ConfigError(f"dataset settings missing: {missing}")
