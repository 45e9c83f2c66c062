"""NSL-KDD: KDDTrain+/KDDTest+ text files, three tasks, the official and the seed-paper split."""

from __future__ import annotations

import logging
from pathlib import Path

from ids_lightning.data.base import TabularDataModule
from ids_lightning.data.download import download
from ids_lightning.data.files import read_cached
from ids_lightning.data.splits import stratified_split
from ids_lightning.errors import DataError, MissingDataError
from ids_lightning.formats import nsl_kdd
from ids_lightning.table import RawTable

log = logging.getLogger(__name__)

SHA256 = {
    nsl_kdd.TRAIN_FILE: "1b86d2f957b33082081bba410fe129b475efebcc13c9014c3f447c8271aadf95",
    nsl_kdd.TEST_FILE: "fa46b0935342616aa83b7c2578db355b6a7aaabbc492248172c7a1e8b7ab8f84",
}
MIRRORS = {
    nsl_kdd.TRAIN_FILE: ["https://raw.githubusercontent.com/defcom17/NSL_KDD/master/KDDTrain%2B.txt"],
    nsl_kdd.TEST_FILE: [
        "https://raw.githubusercontent.com/dnyaneshpadol/Attack-Detection-ML/"
        "ba202dfe46c66b40cf30088dbaf5cf9d6d4fc9dd/dataset/KDDTest%2B.txt",
        "https://raw.githubusercontent.com/defcom17/NSL_KDD/master/KDDTest%2B.txt",
    ],
}
SPLITS = ("official", "random")


class NSLKDDDataModule(TabularDataModule):
    """NSL-KDD with ``task`` family (5 classes) | binary | attack and ``split``:

    - ``official``: train and validation are a stratified, seeded split of KDDTrain+; the test
      set is KDDTest+, with 17 attack names that training never sees. The honest protocol.
    - ``random``: the seed paper's stratified 70/15/15 split of KDDTrain+ alone.
    """

    name = "nsl_kdd"

    def __init__(self, *args, subdir: str = "nsl_kdd", download: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if self.task not in nsl_kdd.TASKS:
            raise ValueError(f"dataset.task must be one of {nsl_kdd.TASKS}, not {self.task!r}")
        if self.split not in SPLITS:
            raise ValueError(f"dataset.split must be one of {SPLITS}, not {self.split!r}")
        self.folder = self.data_dir / subdir
        self.download = download

    def _needed_files(self) -> list[str]:
        return [nsl_kdd.TRAIN_FILE] + ([nsl_kdd.TEST_FILE] if self.split == "official" else [])

    def _find(self, name: str) -> Path | None:
        return next((p for p in (self.folder / name, self.folder / f"{name}.gz") if p.is_file()), None)

    def prepare_data(self) -> None:
        """Download missing files (sha256-checked) when allowed; else explain where to put them."""
        for name in self._needed_files():
            if self._find(name) is not None:
                continue
            if self.download:
                try:
                    download(MIRRORS[name], self.folder / name, SHA256[name])
                    continue
                except DataError as err:
                    log.warning("%s", err)
            raise MissingDataError(
                f"NSL-KDD file not found: {self.folder / name} (or {name}.gz).\n"
                f"Expected {', '.join(self._needed_files())} (plain or gzipped) in {self.folder}.\n"
                "Get them from https://www.unb.ca/cic/datasets/nsl.html (NSL-KDD.zip holds "
                "KDDTrain+.txt and KDDTest+.txt), put them there, or point paths.data_dir / "
                "$IDS_DATA_DIR at the folder that contains nsl_kdd/."
                + ("" if self.download else " (dataset.download=true tries public mirrors.)")
            )

    def _read(self, name: str) -> RawTable:
        path = self._find(name)
        if path is None:
            self.prepare_data()
            path = self._find(name)
        table = read_cached(nsl_kdd.read_file, path, bad_rows=self.bad_rows)
        return table.with_labels(nsl_kdd.task_labels(table.labels, self.task))

    def load_splits(self) -> tuple[dict[str, RawTable], list[str]]:
        train = self._read(nsl_kdd.TRAIN_FILE)
        if self.split == "official":
            train_idx, val_idx = stratified_split(
                train.labels.astype(str), [1 - self.val_fraction, self.val_fraction], self.seed
            )
            tables = {
                "train": train.take(train_idx),
                "val": train.take(val_idx),
                "test": self._read(nsl_kdd.TEST_FILE),
            }
        else:
            fractions = [1 - self.val_fraction - self.test_fraction, self.val_fraction, self.test_fraction]
            parts = stratified_split(train.labels.astype(str), fractions, self.seed)
            tables = dict(zip(("train", "val", "test"), (train.take(p) for p in parts)))
        if self.task == "family":
            class_names = list(nsl_kdd.FAMILY_CLASSES)
        elif self.task == "binary":
            class_names = list(nsl_kdd.BINARY_CLASSES)
        else:
            class_names = sorted(set(tables["train"].labels.tolist()))
        return tables, class_names
