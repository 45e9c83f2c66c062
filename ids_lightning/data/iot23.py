"""IoT-23: Zeek logs and CSV exports, binary or detailed labels, random or by-capture splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ids_lightning.data.base import TabularDataModule
from ids_lightning.data.files import read_cached, resolve_files
from ids_lightning.data.splits import stratified_split
from ids_lightning.errors import DataError
from ids_lightning.formats import parquet, zeek
from ids_lightning.table import RawTable, concat

TASKS = ("binary", "detailed")
SPLITS = ("random", "by_capture")
OTHER = "other"


def read_iot23(path: Path, bad_rows: str = "error", engine: str = "auto") -> RawTable:
    """One IoT-23 file: a Zeek log, a CSV export, or Parquet made by ``ids_lightning.prepare``."""
    if path.suffix == ".parquet":
        return parquet.read(path, "iot23")
    return zeek.read_file(path, bad_rows=bad_rows, engine=engine, keep_ids=False)


class IoT23DataModule(TabularDataModule):
    """IoT-23 flows with ``task`` binary (benign/malicious) | detailed, and ``split``:

    - ``random``: stratified 70/15/15 of all rows (the seed paper's protocol).
    - ``by_capture``: the captures named in ``test_captures`` are the test set; the others are
      split into train and validation. A detector is tested on traffic it has never seen.

    Under ``detailed``, detailed labels with fewer than ``min_class_count`` training rows are
    folded into ``other``, and so are test labels that training never saw.
    """

    name = "iot23"

    def __init__(
        self,
        *args,
        files: list[str],
        test_captures: list[str] | None = None,
        min_class_count: int = 50,
        engine: str = "auto",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.task not in TASKS:
            raise ValueError(f"dataset.task must be one of {TASKS} for IoT-23, not {self.task!r}")
        if self.split not in SPLITS:
            raise ValueError(f"dataset.split must be one of {SPLITS} for IoT-23, not {self.split!r}")
        if self.split == "by_capture" and not test_captures:
            raise ValueError("dataset.split=by_capture needs dataset.test_captures")
        self.files, self.test_captures = list(files), list(test_captures or [])
        self.min_class_count, self.engine = min_class_count, engine

    def load_splits(self) -> tuple[dict[str, RawTable], list[str]]:
        paths = resolve_files(self.files, self.data_dir, "IoT-23")
        table = concat([read_cached(read_iot23, p, bad_rows=self.bad_rows, engine=self.engine) for p in paths])
        labels = table.labels if self.task == "binary" else table.meta["detailed_label"]
        table = table.with_labels(labels)
        if self.split == "random":
            fractions = [1 - self.val_fraction - self.test_fraction, self.val_fraction, self.test_fraction]
            parts = stratified_split(labels.astype(str), fractions, self.seed)
            tables = dict(zip(("train", "val", "test"), (table.take(p) for p in parts)))
        else:
            tables = self._by_capture(table)
        if self.task == "binary":
            return tables, list(zeek.LABELS)
        return self._fold_rare(tables)

    def _by_capture(self, table: RawTable) -> dict[str, RawTable]:
        captures = table.meta["capture"]
        available = sorted(set(captures.tolist()))
        missing = [c for c in self.test_captures if c not in available]
        if missing:
            raise DataError(f"test captures {missing} are not among the files read: {available}")
        test = np.isin(captures, self.test_captures)
        if test.all():
            raise DataError(f"every capture read is a test capture ({available}): nothing left to train on")
        rest = table.take(np.flatnonzero(~test))
        train_idx, val_idx = stratified_split(
            rest.labels.astype(str), [1 - self.val_fraction, self.val_fraction], self.seed
        )
        return {"train": rest.take(train_idx), "val": rest.take(val_idx), "test": table.take(np.flatnonzero(test))}

    def _fold_rare(self, tables: dict[str, RawTable]) -> tuple[dict[str, RawTable], list[str]]:
        counts = Counter(tables["train"].labels.tolist())
        kept = {c for c, n in counts.items() if n >= self.min_class_count or c == "benign"}
        folded = {
            name: t.with_labels(np.where(np.isin(t.labels, list(kept)), t.labels, OTHER).astype(object))
            for name, t in tables.items()
        }
        rare = sorted(set(counts) - kept)
        names = ["benign", *sorted(kept - {"benign"})] + ([OTHER] if rare else [])
        self.extra_stats["folded_into_other"] = rare
        return folded, names
