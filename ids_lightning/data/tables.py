"""From a dataset's files to labelled split tables and tensors: read through the spec, label under
the task, split, fold rare classes, build windows, fit the preprocessing on training rows, and
encode and balance. The datamodule (:mod:`ids_lightning.data.datamodule`) serves the result."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ids_lightning.core.files import read_cached, resolve_files
from ids_lightning.core.operating import HostFlows
from ids_lightning.core.parquet import read as read_parquet
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.spec import OTHER
from ids_lightning.core.splits import ATTACK_TYPE, split_table
from ids_lightning.core.table import RawTable, concat
from ids_lightning.core.windows import (
    BLOCK_WINDOWS,
    CONTEXT_FEATURES,
    block_groups,
    host_groups,
    padded_table,
    pointing_at_pad,
    window_index,
    with_context,
)
from ids_lightning.data.balance import class_weights, resample
from ids_lightning.data.options import DataOptions
from ids_lightning.evaluation.unseen import TestTypes
from ids_lightning.models.batches import Features, WindowedFeatures

log = logging.getLogger(__name__)
STAGES = ("train", "val", "test")


def fold(labels: np.ndarray, kept: set[str]) -> np.ndarray:
    """Labels outside ``kept`` become ``other``."""
    return np.where(np.isin(labels, list(kept)), labels, OTHER).astype(object)


def rows_of(x: Features, y: torch.Tensor, index: torch.Tensor) -> tuple[Features, torch.Tensor]:
    """Samples ``index`` of a split (windowed ones keep sharing their table)."""
    if isinstance(x, WindowedFeatures):
        return WindowedFeatures(x.table, x.windows[index]), y[index]
    return x[index], y[index]


def skip_facts(skipped: set | list) -> dict:
    """What ``metrics.json`` says of the malformed rows skipped: how many, and the first 20.
    Tables cut from one file share its skip records: a set counts each row once."""
    rows = sorted(set(skipped))
    return {
        "rows_skipped": len(rows),
        "rows_skipped_examples": [f"{src}:{line}: {why}" for src, line, why in rows[:20]],
    }


def counts(y: np.ndarray, class_names: list[str]) -> dict[str, int]:
    return dict(zip(class_names, np.bincount(y, minlength=len(class_names)).tolist()))


@dataclass
class Built:
    """The tensors of the splits built, and what ``metrics.json`` says about them."""

    tensors: dict[str, tuple[Features, torch.Tensor]]
    preprocessor: Preprocessor
    stats: dict
    class_weights: list[float] | None = None
    test_types: TestTypes | None = None
    host_flows: dict[str, HostFlows] = field(default_factory=dict)  # val/test, where validation is captures
    partitions: dict[str, np.ndarray] = field(default_factory=dict)  # val/test samples' capture (site, ...)


@dataclass
class SplitTables:
    """Reads and splits the rows that ``options`` describe, and builds their tensors."""

    options: DataOptions
    extra_stats: dict = field(default_factory=dict)  # dataset-specific facts for metrics.json

    # --- files -------------------------------------------------------------------------------------
    def patterns(self) -> list[str]:
        """Every file pattern the split reads."""
        source = self.options.source
        return list(source.files) + (list(source.test_files) if self.options.tests_on_files else [])

    def paths(self, patterns: list[str] | tuple[str, ...]) -> list[Path]:
        spec = self.options.source.spec
        return resolve_files(list(patterns), self.options.source.data_dir, spec.title, spec.source_hint)

    def read(self, patterns: list[str] | tuple[str, ...]) -> RawTable:
        return self.labelled(concat([self.read_file(path) for path in self.paths(patterns)]))

    def labelled(self, table: RawTable) -> RawTable:
        """``table`` with each row's class under the task, and its attack type in the metadata."""
        spec = self.options.source.spec
        types = spec.attack_types(table)
        labelled = table.with_labels(spec.task_labels(table, self.options.split.task))
        if types is not None:  # kept to tell attack types training never saw from the others
            labelled.meta[ATTACK_TYPE] = np.asarray(types, dtype=object)
        return labelled

    def read_file(self, path: Path) -> RawTable:
        source = self.options.source
        if path.suffix == ".parquet":
            return read_cached(read_parquet, path, fmt=source.spec.name)
        return read_cached(
            source.spec.read_file,
            path,
            bad_rows=source.bad_rows,
            engine=source.engine,
            keep_ids=self.options.keeps_flow_ids,
            **source.read_options,
        )

    # --- splits and classes ----------------------------------------------------------------------
    def load_splits(self) -> tuple[dict[str, RawTable], list[str]]:
        """Raw train/val/test tables with labels under the task, and the ordered class names."""
        source, split = self.options.source, self.options.split
        kind = source.spec.splits[split.split]
        tables = split_table(
            self.read(source.files),
            kind,
            val_fraction=split.val_fraction,
            test_fraction=split.test_fraction,
            seed=split.seed,
            test_table=self.read(source.test_files) if kind.kind == "test_files" else None,
            test_partitions=list(split.test_partitions),
            groups=self.blocks if self.options.sample.window > 1 else None,
            validation=split.validation,
        )
        if split.refit:  # validation rows are trained on: their scores describe seen rows and choose nothing
            tables["train"] = concat([tables["train"], tables["val"]])
        fixed = source.spec.tasks[split.task]
        if fixed is not None:
            return tables, list(fixed)
        if not split.min_class_count:
            return tables, sorted(set(tables["train"].labels.tolist()))
        names, kept = self.class_names(Counter(tables["train"].labels.tolist()))
        return {name: t.with_labels(fold(t.labels, kept)) for name, t in tables.items()}, names

    def blocks(self, table: RawTable) -> np.ndarray:
        """The blocks of each host's consecutive flows that a random split moves whole."""
        window = self.options.sample.window
        return block_groups(host_groups(table, self.options.source.spec.host_column), BLOCK_WINDOWS * window)

    def class_names(self, label_counts: Counter) -> tuple[list[str], set[str]]:
        """Labels with fewer than ``min_class_count`` training rows, and labels training never
        saw, become ``other``; benign classes are always kept and come first. The class names
        and the labels kept."""
        spec, least = self.options.source.spec, self.options.split.min_class_count
        kept = {c for c, n in label_counts.items() if n >= least or spec.is_benign(c)}
        rare = sorted(set(label_counts) - kept)
        benign = sorted(c for c in kept if spec.is_benign(c))
        self.extra_stats["folded_into_other"] = rare
        return [*benign, *sorted(kept - set(benign))] + ([OTHER] if rare else []), kept

    def windows_of(self, tables: dict[str, RawTable]) -> dict[str, np.ndarray]:
        """Each split's windows (``[rows, window]``, numbers of rows of that split's own table),
        over every flow of the split, before unscorable rows are dropped; with ``context`` the
        tables gain the context features (in place). Empty with one-flow samples."""
        windows, sample, spec = {}, self.options.sample, self.options.source.spec
        if sample.window > 1:
            for name, table in tables.items():
                windows[name] = window_index(host_groups(table, spec.host_column), sample.window)
                if sample.context:
                    tables[name] = with_context(table, windows[name], spec)
        return windows

    # --- tensors -------------------------------------------------------------------------------
    def build(
        self, tables: dict[str, RawTable], class_names: list[str], preprocessor: Preprocessor | None = None
    ) -> Built:
        """Tensors of the given splits (any of train, val, test), with ``preprocessor`` or, when
        None, the one fitted on ``tables["train"]``. Validation and test rows of a class the
        model cannot output are dropped and counted, never silently."""
        tables = dict(tables)
        windows = self.windows_of(tables)
        samples, dropped = self._scorable(tables, class_names)
        test_types = None
        if all(s in tables and ATTACK_TYPE in tables[s].meta for s in ("train", "test")):
            seen = frozenset(str(t) for t in tables["train"].meta[ATTACK_TYPE].tolist())
            test_types = TestTypes(tables["test"].meta[ATTACK_TYPE][samples["test"]].astype(str), seen)
        preprocessor = preprocessor or self._fit(tables["train"], class_names)
        built = Built({}, preprocessor, {}, test_types=test_types)
        notes, counts_before, unknown_rows = self._encode(tables, samples, windows, built, class_names)
        sample = self.options.sample
        if sample.balance == "class_weight" and "train" in tables:
            built.class_weights = class_weights(built.tensors["train"][1].numpy(), len(class_names))
        built.stats = {
            "balance": sample.balance,
            "class_counts_before_balance": counts_before,
            "class_counts": {s: counts(t[1].numpy(), class_names) for s, t in built.tensors.items()},
            "balance_notes": notes,
            **skip_facts({row for table in tables.values() for row in table.skipped}),
            "rows_dropped_unseen_class": dropped,
            "rows_with_unknown_category": unknown_rows,
            "window": sample.window,
            "context_features": list(CONTEXT_FEATURES) if sample.context else [],
            **self.extra_stats,
        }
        return built

    def _host_flows(self, table: RawTable, rows: np.ndarray, unseen_category: np.ndarray) -> HostFlows:
        """The rows' source hosts, each named within its capture (one address in two captures is
        two hosts: they were recorded apart), times and unseen-category flags."""
        spec = self.options.source.spec
        hosts, times = table.meta[spec.host_column][rows], table.meta[spec.time_column][rows].astype(float)
        captures = table.meta.get(self.options.split.validation.partition_key)
        if captures is not None:
            hosts = np.array([None if h is None else f"{c}/{h}" for c, h in zip(captures[rows], hosts)], dtype=object)
        return HostFlows(hosts, times, unseen_category[rows])

    def _scorable(self, tables: dict[str, RawTable], class_names: list[str]) -> tuple[dict, dict]:
        """Per split, the rows a model of ``class_names`` can be scored on (one-flow splits are
        cut down to them in place; windows keep every flow as context), and the rows dropped."""
        samples = {"train": np.arange(len(tables["train"]))} if "train" in tables else {}
        dropped: dict[str, int] = {}
        for stage in (s for s in ("val", "test") if s in tables):
            labels = tables[stage].labels
            known = np.isin(labels.astype(str), class_names)
            dropped[stage] = int((~known).sum())
            if dropped[stage]:
                log.warning(
                    "%s: dropped %d %s rows of classes absent from training: %s",
                    self.options.source.spec.name, dropped[stage], stage,
                    dict(Counter(labels[~known].tolist()).most_common()),
                )  # fmt: skip
            samples[stage] = np.flatnonzero(known)
            if self.options.sample.window == 1:
                tables[stage] = tables[stage].take(samples[stage])
                samples[stage] = np.arange(len(samples[stage]))
        return samples, dropped

    def _fit(self, train: RawTable, class_names: list[str]) -> Preprocessor:
        sample = self.options.sample
        return Preprocessor.fit(
            train,
            dataset=self.options.source.spec.name,
            task=self.options.split.task,
            class_names=class_names,
            encoding=sample.categorical,
            scaler=sample.scaler,
            clip=sample.clip,
            window=sample.window,
        )

    def _encode(
        self, tables: dict, samples: dict, windows: dict, built: Built, class_names: list[str]
    ) -> tuple[list, dict, dict]:
        """Each split scaled, encoded and (training rows) resampled into ``built.tensors``; the
        balancing notes, the training counts before balancing, and rows with unknown categories."""
        pre, sample = built.preprocessor, self.options.sample
        notes, counts_before, unknown_rows = [], {}, {}
        for stage in (s for s in STAGES if s in tables):
            table, kept = tables[stage], samples[stage]
            scaled, codes = pre.scale(table)
            y = pre.encode_labels(table.labels[kept])
            unseen_category = (codes == 0).any(axis=1)
            unknown_rows[stage] = int(unseen_category.sum())
            if stage != "train" and self.options.validates_on_hosts:
                built.host_flows[stage] = self._host_flows(table, kept, unseen_category)
            partition_key = (self.options.source.spec.partition_columns or (None,))[0]
            if stage != "train" and partition_key in table.meta:
                built.partitions[stage] = np.asarray(table.meta[partition_key])[kept]
            if stage == "train":
                counts_before = {"train": counts(y, class_names)}
            if sample.window > 1:
                rows = pointing_at_pad(windows[stage][kept], len(table)).astype(np.int32)
                table_tensor = torch.from_numpy(padded_table(pre.encode(scaled, codes)))
                built.tensors[stage] = (WindowedFeatures(table_tensor, torch.from_numpy(rows)), torch.from_numpy(y))
                continue
            if stage == "train":
                seed = self.options.split.seed
                scaled, codes, y, notes = resample(scaled, codes, y, sample.balance, sample.k_neighbors, seed)
            built.tensors[stage] = (torch.from_numpy(pre.encode(scaled, codes)), torch.from_numpy(y))
        return notes, counts_before, unknown_rows
