"""One DataModule for every dataset: read through the dataset's spec, split, fit preprocessing
on the training split, balance it, and serve device-resident tensors.

A split too large for the GPU stays in host memory and only each chunk's rows are moved.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ids_lightning.core.errors import ConfigError, DataError, MissingDataError, check_choice
from ids_lightning.core.fileio import download, is_primary_process
from ids_lightning.core.files import find_files, read_cached, resolve_files
from ids_lightning.core.parquet import read as read_parquet
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.spec import OTHER, DatasetSpec
from ids_lightning.core.splits import ATTACK_TYPE, VAL_SPLITS, Validation, split_table
from ids_lightning.core.table import RawTable, concat
from ids_lightning.core.windows import (
    BLOCK_WINDOWS,
    CONTEXT_FEATURES,
    block_groups,
    check_window,
    host_groups,
    padded_table,
    pointing_at_pad,
    window_index,
    with_context,
)
from ids_lightning.data.balance import METHODS as BALANCE_METHODS
from ids_lightning.data.balance import class_weights, resample, weights_of_counts
from ids_lightning.data.streaming import TEST, VAL, Chunk, ChunkReader, Scan, StreamBatches, out_of_core
from ids_lightning.datasets import get_spec
from ids_lightning.models.batches import Features, InMemoryBatches, WindowedFeatures

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


TRAIN_SAMPLE_ROWS = 65_536  # out of core: the training rows kept in memory for fits that sample them


def fold(labels: np.ndarray, kept: set[str]) -> np.ndarray:
    """Labels outside ``kept`` become ``other``."""
    return np.where(np.isin(labels, list(kept)), labels, OTHER).astype(object)


def _rows(x: Features, y: torch.Tensor, index: torch.Tensor) -> tuple[Features, torch.Tensor]:
    """Samples ``index`` of a split (windowed ones keep sharing their table)."""
    if isinstance(x, WindowedFeatures):
        return WindowedFeatures(x.table, x.windows[index]), y[index]
    return x[index], y[index]


class FlowDataModule(L.LightningDataModule):
    """Flows of the dataset whose spec is named ``spec`` (:mod:`ids_lightning.datasets`), under
    ``task`` and ``split``.

    ``files`` (and ``test_files`` for a split that tests on files) are glob patterns under
    ``data_dir``: raw files of the dataset or Parquet made by ``python -m ids_lightning.cli.prepare``.
    ``test_partitions`` names the captures (hosts, ...) a partition split tests on. Under a task
    whose classes come from training, ``min_class_count`` folds rarer labels into ``other``
    (test labels that training never saw too). Validation and test rows of a class the model
    cannot output are dropped and counted, never silently.

    ``val_split`` says how validation rows are cut from what is not test (``random``,
    ``by_family``: whole attack types training never sees, ``by_capture``: the captures
    ``val_partitions``; :class:`~ids_lightning.core.splits.Validation`).

    ``window`` > 1 makes each sample a flow with the ``window - 1`` flows its source host made
    before it (:mod:`ids_lightning.core.windows`), built inside each split; a random split then
    moves blocks of each host's flows, not single flows. ``context`` adds host-context features
    over each flow's window as numeric columns.
    """

    def __init__(
        self,
        spec: str,
        data_dir: str,
        files: list[str],
        task: str,
        split: str,
        test_files: list[str] | None = None,
        test_partitions: list[str] | None = None,
        min_class_count: int | None = None,
        read_options: dict | None = None,
        download: bool = False,
        engine: str = "auto",
        categorical: str = "label",
        scaler: str = "minmax",
        clip: bool = True,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        batch_size: int = 64,
        eval_batch_size: int = 4096,
        steps_per_chunk: int = 16,
        device_memory_fraction: float = 0.5,
        balance: str = "none",
        k_neighbors: int = 5,
        seed: int = 42,
        shuffle_seed: int | list[int] | None = None,
        bad_rows: str = "error",
        output_dir: str | None = None,
        window: int = 1,
        context: bool = False,
        val_split: str = "random",
        val_partitions: list[str] | None = None,
        in_memory: str = "auto",
        shuffle_buffer: int = 262_144,
    ):
        super().__init__()
        self.spec: DatasetSpec = get_spec(spec)
        self.spec.check(task, split)
        check_choice("dataset.bad_rows", bad_rows, ("error", "skip"))
        check_choice("dataset.balance", balance, BALANCE_METHODS)
        check_window(window, self.spec)
        if context and window == 1:
            raise ConfigError("dataset.context=true summarises each flow's window: set dataset.window above 1")
        if window > 1 and balance not in ("none", "class_weight"):
            raise ConfigError(
                f"dataset.balance={balance} makes or drops single flows, which breaks windows of "
                "consecutive flows; with dataset.window > 1 use none or class_weight"
            )
        self.window, self.context = window, context
        check_choice("dataset.val_split", val_split, VAL_SPLITS)
        self.validation = Validation(
            val_split,
            tuple(val_partitions or ()),
            self.spec.partition_columns[0] if self.spec.partition_columns else None,
            benign=self.spec.benign,
        )
        self.name = self.spec.name
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.files, self.test_files = list(files), list(test_files or [])
        self.task, self.split = task, split
        if self.spec.splits[split].kind == "test_files" and not self.test_files:
            raise ConfigError(f"dataset.split={split} tests on dataset.test_files: set them")
        self.test_partitions, self.min_class_count = list(test_partitions or []), min_class_count
        if isinstance(read_options, DictConfig):
            read_options = OmegaConf.to_container(read_options, resolve=True)
        self.read_options = self.spec.options(read_options)
        self.download, self.engine = download, engine
        self.categorical, self.scaler, self.clip = categorical, scaler, clip
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.steps_per_chunk, self.device_memory_fraction = steps_per_chunk, device_memory_fraction
        self.balance, self.k_neighbors = balance, k_neighbors
        self.class_weights: list[float] | None = None
        self.seed, self.bad_rows = seed, bad_rows
        # the training order's seed: the run's seed, also where several seeds share one split
        self.shuffle_seed = seed if shuffle_seed is None else shuffle_seed
        self.output_dir = Path(output_dir) if output_dir else None
        self.in_memory, self.shuffle_buffer = str(in_memory).lower(), shuffle_buffer
        self.stream: tuple[list[Chunk], ChunkReader] | None = None  # out of core: the training chunks
        self.preprocessor: Preprocessor | None = None
        self._test_types: tuple[np.ndarray, set[str]] | None = None
        self.tensors: dict[str, tuple[Features, torch.Tensor]] = {}
        self.stats: dict = {}
        self.extra_stats: dict = {}  # dataset-specific facts for metrics.json

    # --- files -------------------------------------------------------------------------------------
    def _patterns(self) -> list[str]:
        tests_on_files = self.spec.splits[self.split].kind == "test_files"
        return self.files + (self.test_files if tests_on_files else [])

    def prepare_data(self) -> None:
        """Download missing files that the spec can fetch (sha256-checked) when allowed; else
        say exactly which file to get and where to put it. Other patterns are resolved when read."""
        for pattern in self._patterns():
            source = self.spec.downloads.get(pattern)
            if source is None or find_files(pattern, self.data_dir):
                continue
            if self.download:
                try:
                    download(list(source.urls), self.data_dir / pattern, source.sha256)
                    continue
                except DataError as err:
                    log.warning("%s", err)
            raise MissingDataError(
                f"{self.spec.title} file not found: {self.data_dir / pattern} (plain or gzipped).\n"
                f"Expected {', '.join(self._patterns())} under {self.data_dir}.\n{self.spec.source_hint} "
                "Or point paths.data_dir / $IDS_DATA_DIR at the folder that holds them."
                + ("" if self.download else " (dataset.download=true tries public mirrors.)")
            )

    def _paths(self, patterns: list[str]) -> list[Path]:
        return resolve_files(patterns, self.data_dir, self.spec.title, self.spec.source_hint)

    def _read(self, patterns: list[str]) -> RawTable:
        return self.labelled(concat([self._read_file(path) for path in self._paths(patterns)]))

    def labelled(self, table: RawTable) -> RawTable:
        """``table`` with each row's class under the task, and its attack type in the metadata."""
        types = self.spec.attack_types(table)
        labelled = table.with_labels(self.spec.task_labels(table, self.task))
        if types is not None:  # kept to tell attack types training never saw from the others
            labelled.meta[ATTACK_TYPE] = np.asarray(types, dtype=object)
        return labelled

    def _read_file(self, path: Path) -> RawTable:
        if path.suffix == ".parquet":
            return read_cached(read_parquet, path, fmt=self.spec.name)
        return read_cached(
            self.spec.read_file,
            path,
            bad_rows=self.bad_rows,
            engine=self.engine,
            keep_ids=self.window > 1,  # windows need hosts, times and peers
            **self.read_options,
        )

    def load_splits(self) -> tuple[dict[str, RawTable], list[str]]:
        """Raw train/val/test tables with labels under the task, and the ordered class names."""
        self.prepare_data()  # a rebuilt run sets up without the trainer's call to it
        kind = self.spec.splits[self.split]
        tables = split_table(
            self._read(self.files),
            kind,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed,
            test_table=self._read(self.test_files) if kind.kind == "test_files" else None,
            test_partitions=self.test_partitions,
            groups=self._blocks if self.window > 1 else None,
            validation=self.validation,
        )
        fixed = self.spec.tasks[self.task]
        if fixed is not None:
            return tables, list(fixed)
        if not self.min_class_count:
            return tables, sorted(set(tables["train"].labels.tolist()))
        return self._fold_rare(tables)

    def _blocks(self, table: RawTable) -> np.ndarray:
        return block_groups(host_groups(table, self.spec.host_column), BLOCK_WINDOWS * self.window)

    def _fold_rare(self, tables: dict[str, RawTable]) -> tuple[dict[str, RawTable], list[str]]:
        names, kept = self._class_names(Counter(tables["train"].labels.tolist()))
        return {name: t.with_labels(fold(t.labels, kept)) for name, t in tables.items()}, names

    def _class_names(self, counts: Counter) -> tuple[list[str], set[str]]:
        """Labels with fewer than ``min_class_count`` training rows, and labels training never
        saw, become ``other``; benign classes are always kept and come first. The class names
        and the labels kept."""
        kept = {c for c, n in counts.items() if n >= self.min_class_count or self.spec.is_benign(c)}
        rare = sorted(set(counts) - kept)
        benign = sorted(c for c in kept if self.spec.is_benign(c))
        self.extra_stats["folded_into_other"] = rare
        return [*benign, *sorted(kept - set(benign))] + ([OTHER] if rare else []), kept

    # --- setup ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.preprocessor is not None:
            return
        self.prepare_data()
        paths = self._paths(self.files)
        if out_of_core(self.in_memory, paths):  # test files are read whole either way
            self._setup_out_of_core(paths)
        else:
            self.build(*self.load_splits())
        self.stats["in_memory"] = self.stream is None

    def _setup_out_of_core(self, paths: list[Path]) -> None:
        """Stream the training rows (:mod:`ids_lightning.data.streaming`); validation and test
        rows are built in memory as usual, with the preprocessing fitted in the scan."""
        scan = Scan(self)
        scan.run(paths)
        fixed, kept = self.spec.tasks[self.task], None
        if fixed is not None:
            class_names = list(fixed)
        elif self.min_class_count:
            class_names, kept = self._class_names(scan.label_counts)
        else:
            class_names = sorted(scan.label_counts)
        tests_on_files = self.spec.splits[self.split].kind == "test_files"
        held = {
            "val": scan.held_out(VAL),
            "test": self._read(self.test_files) if tests_on_files else scan.held_out(TEST),
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
        train_counts = Counter()
        for label, count in scan.label_counts.items():
            train_counts[label if kept is None or label in kept else OTHER] += count
        train = {c: train_counts.get(c, 0) for c in class_names}
        self.stats["class_counts_before_balance"] = {"train": train}
        self.stats["class_counts"] = {"train": train, **self.stats["class_counts"]}
        skipped = sorted(scan.skipped | {row for table in held.values() for row in table.skipped})
        self.stats["rows_skipped"] = len(skipped)
        self.stats["rows_skipped_examples"] = [f"{src}:{line}: {why}" for src, line, why in skipped[:20]]
        self.stats["train_chunks"] = len(scan.chunks)
        if self.balance == "class_weight":
            self.class_weights = weights_of_counts(np.array(list(train.values())))
        if ATTACK_TYPE in held["test"].meta:
            known = np.isin(held["test"].labels.astype(str), class_names)
            self._test_types = (held["test"].meta[ATTACK_TYPE][known].astype(str), scan.seen_types)
        self.tensors["train"] = self.train_sample(TRAIN_SAMPLE_ROWS)
        log.info(
            "%s: training out of core on %s rows in %d chunks (validation %d, test %d rows in memory)",
            self.name, f"{sum(c.rows for c in scan.chunks):,}", len(scan.chunks), len(held["val"]), len(held["test"]),
        )  # fmt: skip

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
                else _rows(x, y, torch.randperm(len(y), generator=generator)[:rows])
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
        return (x, y) if len(y) <= rows else _rows(x, y, torch.randperm(len(y), generator=generator)[:rows])

    def build(
        self, tables: dict[str, RawTable], class_names: list[str], preprocessor: Preprocessor | None = None
    ) -> None:
        """Tensors of the given splits (any of train, val, test), with ``preprocessor`` or, when
        None, the one fitted on ``tables["train"]``. A federated site builds its own train and
        validation rows with the merged preprocessing; the server only its test rows."""
        tables = dict(tables)
        stages = [s for s in STAGES if s in tables]
        windows = self.windows_of(tables)
        samples: dict[str, np.ndarray] = {"train": np.arange(len(tables["train"]))} if "train" in tables else {}
        dropped: dict[str, int] = {}
        for stage_name in (s for s in ("val", "test") if s in tables):
            labels = tables[stage_name].labels
            known = np.isin(labels.astype(str), class_names)
            dropped[stage_name] = int((~known).sum())
            if dropped[stage_name]:
                unseen = Counter(labels[~known].tolist())
                log.warning(
                    "%s: dropped %d %s rows of classes absent from training: %s",
                    self.name,
                    dropped[stage_name],
                    stage_name,
                    dict(unseen.most_common()),
                )
            samples[stage_name] = np.flatnonzero(known)
            if self.window == 1:  # windows keep every flow as context of the flows they score
                tables[stage_name] = tables[stage_name].take(samples[stage_name])
                samples[stage_name] = np.arange(len(samples[stage_name]))
        self._test_types = None
        if all(s in tables and ATTACK_TYPE in tables[s].meta for s in ("train", "test")):
            seen = {str(t) for t in tables["train"].meta[ATTACK_TYPE].tolist()}
            self._test_types = (tables["test"].meta[ATTACK_TYPE][samples["test"]].astype(str), seen)
        if preprocessor is None:
            preprocessor = Preprocessor.fit(
                tables["train"],
                dataset=self.name,
                task=self.task,
                class_names=class_names,
                encoding=self.categorical,
                scaler=self.scaler,
                clip=self.clip,
                window=self.window,
            )
        self.preprocessor = preprocessor
        unknown_rows, notes, counts_before = {}, [], {}
        for stage_name in stages:
            table, kept = tables[stage_name], samples[stage_name]
            scaled, codes = self.preprocessor.scale(table)
            y = self.preprocessor.encode_labels(table.labels[kept])
            unknown_rows[stage_name] = int((codes == 0).any(axis=1).sum())
            if stage_name == "train":
                counts_before = {"train": self._counts(y, class_names)}
            if self.window > 1:
                rows = pointing_at_pad(windows[stage_name][kept], len(table)).astype(np.int32)
                table_tensor = torch.from_numpy(padded_table(self.preprocessor.encode(scaled, codes)))
                self.tensors[stage_name] = (WindowedFeatures(table_tensor, torch.from_numpy(rows)), torch.from_numpy(y))
                continue
            if stage_name == "train":
                scaled, codes, y, notes = resample(scaled, codes, y, self.balance, self.k_neighbors, self.seed)
            x = self.preprocessor.encode(scaled, codes)
            self.tensors[stage_name] = (torch.from_numpy(x), torch.from_numpy(y))
        if self.balance == "class_weight" and "train" in tables:
            self.class_weights = class_weights(self.tensors["train"][1].numpy(), len(class_names))
        # Tables cut from one file share its skip records: a set counts each row once.
        skipped_rows = sorted({row for table in tables.values() for row in table.skipped})
        self.stats = {
            "balance": self.balance,
            "class_counts_before_balance": counts_before,
            "class_counts": {s: self._counts(self.tensors[s][1].numpy(), class_names) for s in stages},
            "balance_notes": notes,
            "rows_skipped": len(skipped_rows),
            "rows_skipped_examples": [f"{src}:{line}: {why}" for src, line, why in skipped_rows[:20]],
            "rows_dropped_unseen_class": dropped,
            "rows_with_unknown_category": unknown_rows,
            "window": self.window,
            "context_features": list(CONTEXT_FEATURES) if self.context else [],
            **self.extra_stats,
        }
        self._log_summary()
        if self.output_dir is not None and is_primary_process():
            self.preprocessor.save(self.output_dir / "preprocess.json")

    def unseen_type_scores(self, predicted: np.ndarray) -> dict:
        """How the test attacks of types training never saw (``novel``: KDDTest+'s 17 new attack
        names, an unseen malware family's labels) fare against the types it saw (``known``),
        given the predicted class of the first ``len(predicted)`` test samples (all of them,
        unless the test was limited): ``detected`` = called any attack class, ``recall`` =
        called its own class, and the record counts. With a benign class, also ``binary_acc``:
        the accuracy of benign vs attack when every attack class counts as "attack" (the
        binary figure of a multi-class model). Empty where the dataset's layout has no attack
        types and no benign class."""
        y = self.tensors["test"][1].numpy()[: len(predicted)]
        benign = [i for i, name in enumerate(self.class_names) if self.spec.is_benign(name)]
        scores: dict = {}
        if benign and len(predicted):
            scores["test/binary_acc"] = float((np.isin(predicted, benign) == np.isin(y, benign)).mean())
        if self._test_types is None:
            return scores
        types, attack, novel = self._test_attacks(len(predicted))
        detected = ~np.isin(predicted, benign)
        for group, mask in (("novel", novel), ("known", attack & ~novel)):
            scores[f"test/{group}_types/records"] = int(mask.sum())
            if mask.any():
                scores[f"test/{group}_types/detected"] = float(detected[mask].mean())
                scores[f"test/{group}_types/recall"] = float((predicted[mask] == y[mask]).mean())
        scores["novel_types"] = dict(Counter(types[novel].tolist()).most_common())
        return scores

    def novel_type_rows(self, rows: int) -> np.ndarray | None:
        """Per test sample (the first ``rows``): an attack of a type training never saw. None
        where the dataset's layout has no attack types."""
        return None if self._test_types is None else self._test_attacks(rows)[2]

    def _test_attacks(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first ``rows`` test samples' attack types, whether each is an attack, and whether
        an attack of a type training never saw."""
        types, seen = self._test_types
        types = types[:rows]
        attack = ~np.array([self.spec.is_benign(t) for t in types], dtype=bool)
        return types, attack, attack & ~np.isin(types, sorted(seen))

    def windows_of(self, tables: dict[str, RawTable]) -> dict[str, np.ndarray]:
        """Each split's windows (``[rows, window]``, numbers of rows of that split's own table),
        over every flow of the split, before unscorable rows are dropped; with ``context`` the
        tables gain the context features (in place). Empty with one-flow samples."""
        windows = {}
        if self.window > 1:
            for name, table in tables.items():
                windows[name] = window_index(host_groups(table, self.spec.host_column), self.window)
                if self.context:
                    tables[name] = with_context(table, windows[name], self.spec)
        return windows

    @staticmethod
    def _counts(y: np.ndarray, class_names: list[str]) -> dict[str, int]:
        return dict(zip(class_names, np.bincount(y, minlength=len(class_names)).tolist()))

    def _log_summary(self) -> None:
        if self.balance not in ("none", "class_weight") and self.stats["class_counts_before_balance"]:
            log.info(
                "%s train split before %s: %s",
                self.name,
                self.balance,
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
            "task": self.task,
            "split": self.split,
            "val_split": self.validation.kind,
            "categorical": self.categorical,
            "scaler": self.scaler,
            "num_features": self.num_features,
            "window": self.window,
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
            if needed > self.device_memory_fraction * free:
                log.warning(
                    "%s %s split (%.1f GiB) kept in host memory: over %.0f%% of free GPU memory",
                    self.name,
                    stage,
                    needed / 2**30,
                    100 * self.device_memory_fraction,
                )
                if not x.is_pinned():
                    self.tensors[stage] = (x.pin_memory(), y.pin_memory())
                return self.tensors[stage]
        self.tensors[stage] = (x.to(device), y.to(device))
        return self.tensors[stage]

    def train_dataloader(self) -> InMemoryBatches | StreamBatches:
        trainer = self.trainer
        distributed = trainer is not None and trainer.world_size > 1
        order = {
            # overfit_batches must see the same batches every epoch
            "shuffle": not (trainer is not None and trainer.overfit_batches),
            "seed": self.shuffle_seed,
            "epoch": (lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            "rank": trainer.global_rank if distributed else 0,
            "world_size": trainer.world_size if distributed else 1,
        }
        if self.stream is not None:
            device = trainer.strategy.root_device if trainer is not None else "cpu"
            return StreamBatches(
                *self.stream, self.batch_size, self.steps_per_chunk, self.shuffle_buffer, device=device, **order
            )
        x, y = self._place("train")
        return InMemoryBatches(x, y, self.batch_size, steps_per_chunk=self.steps_per_chunk, **order)

    def val_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self._rank_share(*self._place("val")), self.eval_batch_size)

    def test_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self._rank_share(*self._place("test")), self.eval_batch_size)

    def _rank_share(self, x: Features, y: torch.Tensor) -> tuple[Features, torch.Tensor]:
        """Under DDP each rank evaluates every ``world_size``-th row (no row twice, none
        dropped), and the metrics sum the ranks' counts: the numbers of one process."""
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return x, y
        return _rows(x, y, torch.arange(trainer.global_rank, len(y), trainer.world_size, device=y.device))
