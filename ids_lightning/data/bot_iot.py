"""BoT-IoT: CSVs in the official layouts or a column map; binary, category or subcategory."""

from __future__ import annotations

from pathlib import Path

from ids_lightning.data.base import TabularDataModule
from ids_lightning.data.files import read_cached, resolve_files
from ids_lightning.data.splits import stratified_split
from ids_lightning.formats import bot_iot, parquet
from ids_lightning.table import RawTable, concat

SPLITS = ("random", "files")


def read_bot_iot(
    path: Path, layout: str = "auto", column_map: tuple | None = None, bad_rows: str = "error", engine: str = "auto"
) -> RawTable:
    """One BoT-IoT file: a CSV in a known layout, or Parquet made by ``ids_lightning.prepare``."""
    if path.suffix == ".parquet":
        return parquet.read(path, "bot_iot")
    return bot_iot.read_file(path, layout, dict(column_map) if column_map else None, bad_rows, engine)


class BotIoTDataModule(TabularDataModule):
    """BoT-IoT flows with ``task`` binary | category | subcategory and ``split``:

    - ``random``: stratified 70/15/15 of the rows of ``files``.
    - ``files``: train and validation from ``files``, test from ``test_files`` (the official
      "10 best features" Training and Testing CSVs).

    ``layout`` names the CSV layout (``auto`` reads it from the header; ``custom`` uses
    ``column_map``). Identifiers, addresses, times and ``seq`` are never features.
    """

    name = "bot_iot"

    def __init__(
        self,
        *args,
        files: list[str],
        test_files: list[str] | None = None,
        layout: str = "auto",
        column_map: dict | None = None,
        engine: str = "auto",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.task not in bot_iot.TASKS:
            raise ValueError(f"dataset.task must be one of {bot_iot.TASKS} for BoT-IoT, not {self.task!r}")
        if self.split not in SPLITS:
            raise ValueError(f"dataset.split must be one of {SPLITS} for BoT-IoT, not {self.split!r}")
        if self.split == "files" and not test_files:
            raise ValueError("dataset.split=files needs dataset.test_files")
        self.files, self.test_files = list(files), list(test_files or [])
        self.layout, self.engine = layout, engine
        # hashable, so that a parsed file can be cached
        self.column_map = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in (column_map or {}).items())

    def _read(self, patterns: list[str]) -> RawTable:
        paths = resolve_files(patterns, self.data_dir, "BoT-IoT")
        options = {"layout": self.layout, "column_map": self.column_map or None, "bad_rows": self.bad_rows}
        table = concat([read_cached(read_bot_iot, p, engine=self.engine, **options) for p in paths])
        return table.with_labels(bot_iot.task_labels(table, self.task))

    def load_splits(self) -> tuple[dict[str, RawTable], list[str]]:
        table = self._read(self.files)
        if self.split == "random":
            fractions = [1 - self.val_fraction - self.test_fraction, self.val_fraction, self.test_fraction]
            parts = stratified_split(table.labels.astype(str), fractions, self.seed)
            tables = dict(zip(("train", "val", "test"), (table.take(p) for p in parts)))
        else:
            train_idx, val_idx = stratified_split(
                table.labels.astype(str), [1 - self.val_fraction, self.val_fraction], self.seed
            )
            tables = {"train": table.take(train_idx), "val": table.take(val_idx), "test": self._read(self.test_files)}
        if self.task == "binary":
            return tables, list(bot_iot.BINARY_CLASSES)
        return tables, sorted(set(tables["train"].labels.tolist()))
