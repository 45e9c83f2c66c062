"""One DataModule for every dataset: the Lightning hooks around :mod:`ids_lightning.data.tables`
(files to labelled splits and tensors) and :mod:`ids_lightning.data.streaming` (training rows
streamed from Parquet), configured by one checked :class:`~ids_lightning.data.options.DataOptions`.

A split too large for the GPU stays in host memory and only each chunk's rows are moved.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import torch

from ids_lightning.core.errors import ConfigError, DataError, MissingDataError
from ids_lightning.core.fileio import download, is_primary_process
from ids_lightning.core.files import find_files
from ids_lightning.core.operating import HostFlows
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.spec import OTHER
from ids_lightning.core.splits import ATTACK_TYPE
from ids_lightning.core.table import RawTable
from ids_lightning.data.balance import weights_of_counts
from ids_lightning.data.options import DataOptions
from ids_lightning.data.streaming import TEST, VAL, Chunk, ChunkReader, Scan, StreamBatches, out_of_core
from ids_lightning.data.tables import Built, SplitTables, fold, rows_of, skip_facts
from ids_lightning.evaluation.unseen import TestTypes
from ids_lightning.models.batches import Features, InMemoryBatches

log = logging.getLogger(__name__)

TRAIN_SAMPLE_ROWS = 65_536  # out of core: the training rows kept in memory for fits that sample them


def flow_datamodule(**settings) -> FlowDataModule:
    """The datamodule of the flat ``dataset.*`` settings (the ``_target_`` of
    ``conf/dataset/_base.yaml``), checked by :meth:`DataOptions.from_settings`."""
    return FlowDataModule(DataOptions.from_settings(**settings))


class FlowDataModule(L.LightningDataModule):
    """Flows of the dataset that ``options.source.spec`` names (:mod:`ids_lightning.datasets`),
    under its task and split; see :class:`~ids_lightning.data.options.DataOptions` for every
    setting. The constructor stores; ``setup`` reads, splits, fits the preprocessing on the
    training rows and builds the tensors (``tensors``, ``preprocessor``, ``stats``,
    ``class_weights``, ``test_types``)."""

    def __init__(self, options: DataOptions):
        super().__init__()
        self.options = options
        self.spec, self.name = options.source.spec, options.source.spec.name
        self.tables = SplitTables(options)
        self.stream: tuple[list[Chunk], ChunkReader] | None = None  # out of core: the training chunks
        self.preprocessor: Preprocessor | None = None
        self.tensors: dict[str, tuple[Features, torch.Tensor]] = {}
        self.stats: dict = {}
        self.class_weights: list[float] | None = None
        self.test_types: TestTypes | None = None  # the test attacks' types, for unseen-type scores
        self.host_flows: dict[str, HostFlows] = {}  # val and test rows' hosts, where validation is captures
        self.partitions: dict[str, np.ndarray] = {}  # val and test samples' capture (site), where known

    def reorder(self, shuffle_seed: int) -> None:
        """Train in the order of ``shuffle_seed`` from now on (a federated site's new round)."""
        self.options = replace(self.options, loader=replace(self.options.loader, shuffle_seed=shuffle_seed))

    # --- files -------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download missing files that the spec can fetch (sha256-checked) when allowed; else
        say exactly which file to get and where to put it. Other patterns are resolved when read."""
        source, patterns = self.options.source, self.tables.patterns()
        for pattern in patterns:
            fetch = self.spec.downloads.get(pattern)
            if fetch is None or find_files(pattern, source.data_dir):
                continue
            if source.download:
                try:
                    download(list(fetch.urls), source.data_dir / pattern, fetch.sha256)
                    continue
                except DataError as err:
                    log.warning("%s", err)
            raise MissingDataError(
                f"{self.spec.title} file not found: {source.data_dir / pattern} (plain or gzipped).\n"
                f"Expected {', '.join(patterns)} under {source.data_dir}.\n{self.spec.source_hint} "
                "Or point paths.data_dir / $IDS_DATA_DIR at the folder that holds them."
                + ("" if source.download else " (dataset.download=true tries public mirrors.)")
            )

    def load_splits(self) -> tuple[dict[str, RawTable], list[str]]:
        """Raw train/val/test tables with labels under the task, and the ordered class names."""
        self.prepare_data()  # a rebuilt run sets up without the trainer's call to it
        return self.tables.load_splits()

    # --- setup ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.preprocessor is not None:
            return
        self.prepare_data()
        paths = self.tables.paths(self.options.source.files)
        if out_of_core(self.options.loader.in_memory, paths):  # test files are read whole either way
            if self.options.split.refit:
                raise ConfigError("dataset.refit trains on the validation rows in memory: set dataset.in_memory=true")
            self._setup_out_of_core(paths)
        else:
            self.build(*self.load_splits())
        self.stats["in_memory"] = self.stream is None
        present = sorted(c for c, n in self.stats["class_counts_before_balance"]["train"].items() if n)
        if len(present) < 2:
            raise DataError(
                f"{self.name}: the training rows hold {len(present)} class{'' if len(present) == 1 else 'es'} "
                f"({', '.join(present) or 'none'}): a detector needs at least two to tell apart; check "
                "dataset.files and the split"
            )

    def data_files(self) -> list[Path]:
        """Every file this datamodule reads: the training files and the test files."""
        test_files = self.options.source.test_files if self.options.tests_on_files else []
        return [*self.tables.paths(self.options.source.files), *(self.tables.paths(test_files) if test_files else [])]

    def build(
        self, tables: dict[str, RawTable], class_names: list[str], preprocessor: Preprocessor | None = None
    ) -> None:
        """Tensors of the given splits (any of train, val, test), with ``preprocessor`` or, when
        None, the one fitted on ``tables["train"]``. A federated site builds its own train and
        validation rows with the merged preprocessing; the server only its test rows."""
        self._keep(self.tables.build(tables, class_names, preprocessor))
        self._log_summary()
        if self.options.output_dir is not None and is_primary_process():
            self.preprocessor.save(self.options.output_dir / "preprocess.json")

    def _keep(self, built: Built) -> None:
        self.tensors, self.preprocessor, self.stats = built.tensors, built.preprocessor, built.stats
        self.test_types = built.test_types
        self.host_flows, self.partitions = built.host_flows, built.partitions
        if built.class_weights is not None:
            self.class_weights = built.class_weights

    def _setup_out_of_core(self, paths: list[Path]) -> None:
        """Stream the training rows (:mod:`ids_lightning.data.streaming`); validation and test
        rows are built in memory as usual, with the preprocessing fitted in the scan."""
        scan = Scan(self.options, self.tables.labelled)
        scan.run(paths)
        class_names, kept = self._streamed_classes(scan.label_counts)
        tests_on_files = self.options.tests_on_files
        held = {
            "val": scan.held_out(VAL),
            "test": self.tables.read(self.options.source.test_files) if tests_on_files else scan.held_out(TEST),
        }
        for name, table in held.items():
            if table is None:
                raise DataError(f"{self.name}: the split leaves no {name} rows")
            if kept is not None:
                held[name] = table.with_labels(fold(table.labels, kept))
        preprocessor = scan.preprocessor(class_names)
        self.build(held, class_names, preprocessor)

        def encode_labels(labels: np.ndarray) -> np.ndarray:
            return preprocessor.encode_labels(labels if kept is None else fold(labels, kept))

        self.stream = (scan.chunks, ChunkReader(scan, encode_labels, preprocessor))
        self._streamed_stats(scan, held, class_names, kept)
        if ATTACK_TYPE in held["test"].meta:
            known = np.isin(held["test"].labels.astype(str), class_names)
            self.test_types = TestTypes(held["test"].meta[ATTACK_TYPE][known].astype(str), frozenset(scan.seen_types))
        self.tensors["train"] = self.train_sample(TRAIN_SAMPLE_ROWS)
        log.info(
            "%s: training out of core on %s rows in %d chunks (validation %d, test %d rows in memory)",
            self.name, f"{sum(c.rows for c in scan.chunks):,}", len(scan.chunks), len(held["val"]), len(held["test"]),
        )  # fmt: skip

    def _streamed_classes(self, label_counts: Counter) -> tuple[list[str], set[str] | None]:
        """The class names of a streamed training split, and the labels kept where rare ones fold."""
        fixed = self.spec.tasks[self.options.split.task]
        if fixed is not None:
            return list(fixed), None
        if self.options.split.min_class_count:
            return self.tables.class_names(label_counts)
        return sorted(label_counts), None

    def _streamed_stats(self, scan: Scan, held: dict, class_names: list[str], kept: set[str] | None) -> None:
        """The training split's counts and skips from the scan, as the in-memory build reports them."""
        train_counts = Counter()
        for label, count in scan.label_counts.items():
            train_counts[label if kept is None or label in kept else OTHER] += count
        train = {c: train_counts.get(c, 0) for c in class_names}
        self.stats["class_counts_before_balance"] = {"train": train}
        self.stats["class_counts"] = {"train": train, **self.stats["class_counts"]}
        self.stats |= skip_facts(scan.skipped | {row for table in held.values() for row in table.skipped})
        self.stats["train_chunks"] = len(scan.chunks)
        if self.options.sample.balance == "class_weight":
            self.class_weights = weights_of_counts(np.array(list(train.values())))

    def train_sample(self, rows: int, seed: int = 0) -> tuple[Features, torch.Tensor]:
        """At most ``rows`` training samples drawn at random (seeded): what fits that need
        training rows but not all of them draw from (int8 calibration, novelty densities). Out
        of core, from whole chunks drawn at random until there are enough rows."""
        generator = torch.Generator().manual_seed(seed)
        if self.stream is None:
            x, y = self.tensors["train"]
            return (
                self.tensors["train"]
                if len(y) <= rows
                else rows_of(x, y, torch.randperm(len(y), generator=generator)[:rows])
            )
        chunks, read = self.stream
        xs, ys = [], []
        for i in torch.randperm(len(chunks), generator=generator).tolist():
            if chunks[i].rows:
                x, y = read(chunks[i])
                xs.append(torch.from_numpy(x))
                ys.append(torch.from_numpy(y))
            if sum(len(y) for y in ys) >= rows:
                break
        x, y = torch.cat(xs), torch.cat(ys)
        return (x, y) if len(y) <= rows else rows_of(x, y, torch.randperm(len(y), generator=generator)[:rows])

    def _log_summary(self) -> None:
        if self.options.sample.balance not in ("none", "class_weight") and self.stats["class_counts_before_balance"]:
            log.info(
                "%s train split before %s: %s",
                self.name,
                self.options.sample.balance,
                self.stats["class_counts_before_balance"]["train"],
            )
        for note in self.stats["balance_notes"]:
            log.warning("%s balancing: %s", self.name, note)
        if self.class_weights is not None:
            log.info("%s class weights: %s", self.name, [round(w, 3) for w in self.class_weights])
        for stage_name, counts in self.stats["class_counts"].items():
            log.info("%s %s split: %s", self.name, stage_name, counts)
        if self.stats["rows_skipped"]:
            log.warning(
                "%s: skipped %d malformed rows (bad_rows=skip), e.g. %s",
                self.name,
                self.stats["rows_skipped"],
                self.stats["rows_skipped_examples"][:3],
            )

    def facts(self) -> dict:
        """What ``metrics.json`` says about the data of a run (deep or baseline)."""
        return {
            "dataset": self.name,
            "task": self.options.split.task,
            "split": self.options.split.split,
            "val_split": self.options.split.validation.kind,
            "refit": self.options.split.refit,
            "categorical": self.options.sample.categorical,
            "scaler": self.options.sample.scaler,
            "num_features": self.num_features,
            "window": self.options.sample.window,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
        }

    # --- sizes ----------------------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        return self._fitted().num_features

    @property
    def num_classes(self) -> int:
        return len(self._fitted().class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self._fitted().class_names)

    def _fitted(self) -> Preprocessor:
        if self.preprocessor is None:
            raise RuntimeError("call setup() before asking the datamodule for sizes")
        return self.preprocessor

    # --- loaders ---------------------------------------------------------------------------------
    def _place(self, stage: str) -> tuple[Features, torch.Tensor]:
        """Move a split to the training device once, unless it would take more than
        ``device_memory_fraction`` of the GPU's free memory: then it stays in host memory
        (pinned) and each chunk moves only its own rows."""
        x, y = self.tensors[stage]
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if x.device == device:
            return x, y
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            needed = x.nbytes + y.nbytes
            if needed > self.options.loader.device_memory_fraction * free:
                log.warning(
                    "%s %s split (%.1f GiB) kept in host memory: over %.0f%% of free GPU memory",
                    self.name,
                    stage,
                    needed / 2**30,
                    100 * self.options.loader.device_memory_fraction,
                )
                if not x.is_pinned():
                    self.tensors[stage] = (x.pin_memory(), y.pin_memory())
                return self.tensors[stage]
        self.tensors[stage] = (x.to(device), y.to(device))
        return self.tensors[stage]

    def train_dataloader(self) -> InMemoryBatches | StreamBatches:
        trainer, loader = self.trainer, self.options.loader
        distributed = trainer is not None and trainer.world_size > 1
        order = {
            # overfit_batches must see the same batches every epoch
            "shuffle": not (trainer is not None and trainer.overfit_batches),
            "seed": self.options.loader.shuffle_seed,
            "epoch": (lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            "rank": trainer.global_rank if distributed else 0,
            "world_size": trainer.world_size if distributed else 1,
        }
        if self.stream is not None:
            device = trainer.strategy.root_device if trainer is not None else "cpu"
            return StreamBatches(
                *self.stream, loader.batch_size, loader.steps_per_chunk, loader.shuffle_buffer, device=device, **order
            )
        x, y = self._place("train")
        return InMemoryBatches(x, y, loader.batch_size, steps_per_chunk=loader.steps_per_chunk, **order)

    def val_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self._rank_share(*self._place("val")), self.options.loader.eval_batch_size)

    def test_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self._rank_share(*self._place("test")), self.options.loader.eval_batch_size)

    def _rank_share(self, x: Features, y: torch.Tensor) -> tuple[Features, torch.Tensor]:
        """Under DDP each rank evaluates every ``world_size``-th row (no row twice, none
        dropped), and the metrics sum the ranks' counts: the numbers of one process."""
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return x, y
        return rows_of(x, y, torch.arange(trainer.global_rank, len(y), trainer.world_size, device=y.device))
