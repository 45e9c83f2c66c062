"""Out-of-core training: the training rows of prepared Parquet files, streamed a chunk (one row
group that ``prepare`` wrote) at a time.

One pass in file order splits every chunk's rows by a seeded hash of their ids (or by capture),
fits the preprocessing on the training rows (exact minima, maxima and categories, a bounded
quantile sketch) and keeps the validation and test rows, which evaluation needs whole. Each
epoch then reads the training chunks in a seeded order (each DDP rank its own share), a
background thread reading and encoding the next chunk while the current one trains, and mixes
their rows in a seeded shuffle buffer before they go to the device-resident training step.
Memory is bounded by the chunk and buffer sizes (and the validation and test rows), not by the
dataset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ids_lightning.core import parquet
from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.preprocess import (
    QUANTILE_LEVELS,
    Preprocessor,
    merged_statistics,
    ranged_scaler,
    site_statistics,
)
from ids_lightning.core.splits import ATTACK_TYPE
from ids_lightning.core.stream import QuantileSketch, row_uniform
from ids_lightning.core.table import RawTable, concat
from ids_lightning.core.windows import (
    BLOCK_WINDOWS,
    CONTEXT_FEATURES,
    add_numeric,
    context_features,
    context_inputs,
    host_groups,
    last_per_group,
    padded_table,
    pointing_at_pad,
    rank_in_group,
    window_index,
)
from ids_lightning.data.options import IN_MEMORY, DataOptions
from ids_lightning.models.batches import StepChunk

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = 0, 1, 2
# what a row costs the in-memory path at its peak (parsed table with its strings, tensors): IoT-23
# at 2 million rows peaked at 6.7 GB (bench.scale), about 1 GB of it the interpreter and torch
BYTES_PER_ROW = 3000
MEMORY_SHARE = 0.5  # auto: out of core when the data would take more than this share of available memory


@dataclass
class Chunk:
    """One row group of a prepared file: which of its rows train, and (windows) each host's
    preceding training flows from earlier chunks of the file."""

    path: Path
    row_group: int
    train: np.ndarray  # np.packbits of the row group's training rows
    rows: int  # training rows
    carry: RawTable | None = None


def parquet_chunks(paths: list[Path]) -> list[tuple[Path, int, int]]:
    """``(path, row group, rows)`` of every row group of the files, in file order."""
    return [(path, i, rows) for path in paths for i, rows in enumerate(parquet.row_groups(path))]


def available_memory() -> int:
    """Bytes of memory free for this process now (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def out_of_core(in_memory: str, paths: list[Path]) -> bool:
    """Whether to stream: ``in_memory=false``, or ``auto`` and the rows would not fit."""
    if in_memory not in IN_MEMORY:
        raise ConfigError(f"dataset.in_memory must be one of {IN_MEMORY}, not {in_memory!r}")
    if in_memory == "true":
        return False
    prepared = all(path.suffix == ".parquet" for path in paths)
    if in_memory == "false":
        if not prepared:
            raw = [str(p) for p in paths if p.suffix != ".parquet"][:3]
            raise ConfigError(
                f"dataset.in_memory=false streams Parquet made by `ids prepare`; {raw} are not: "
                "prepare them and list the .parquet files in dataset.files"
            )
        return True
    if not prepared:
        return False
    rows = sum(rows for _, _, rows in parquet_chunks(paths))
    needed, free = rows * BYTES_PER_ROW, available_memory()
    if needed > MEMORY_SHARE * free:
        log.info("%s rows need about %.1f GiB, over half the %.1f GiB free: training out of core",
                 f"{rows:,}", needed / 2**30, free / 2**30)  # fmt: skip
        return True
    return False


class Scan:
    """The pass over the training files, in file order, that an out-of-core datamodule sets up
    from (see the module's docstring), following ``options`` (spec, task, split, fractions,
    seed, window); ``labelled`` gives a chunk's rows their labels under the task."""

    def __init__(self, options: DataOptions, labelled: Callable[[RawTable], RawTable]):
        self.labelled, self.spec = labelled, options.source.spec
        self.split, self.sample = options.split, options.sample
        kind = self.spec.splits[self.split.split]
        if kind.kind not in ("random", "partition", "test_files"):
            raise ConfigError(f"dataset.split={self.split.split} cannot be streamed")
        if self.split.validation.kind == "by_family":
            raise ConfigError(
                "dataset.val_split=by_family needs every row's attack type at once: use random or by_capture"
            )
        if self.sample.balance not in ("none", "class_weight"):
            raise ConfigError(
                f"dataset.balance={self.sample.balance} resamples the whole training split; out of core, "
                "use none or class_weight"
            )
        if not isinstance(options.loader.shuffle_seed, int):
            raise ConfigError("seeds=[...] trains from the in-memory path: set dataset.in_memory=true")
        self.kind = kind
        self.skip_meta = () if options.keeps_flow_ids else tuple(self.spec.id_columns)
        self.chunks: list[Chunk] = []
        self.label_counts: Counter = Counter()
        self.seen_types: set[str] = set()
        self.statistics: dict | None = None
        self.sketches: list[QuantileSketch] = []
        self.held: dict[int, list[RawTable]] = {VAL: [], TEST: []}
        self._tail: RawTable | None = None  # each host's last training flows in the file so far
        self._host_rows: dict[str, int] = {}  # flows per host in the file so far (random blocks)
        self._found: set[str] = set()  # partitions seen (missing test or validation captures are errors)
        self.skipped: set[tuple[str, int, str]] = set()  # malformed rows prepare skipped (bad_rows=skip)

    # --- one chunk --------------------------------------------------------------------------
    def read(self, path: Path, row_group: int) -> RawTable:
        """The chunk's rows with labels under the task (and attack types, where there are)."""
        return self.labelled(parquet.read(path, self.spec.name, row_group, self.skip_meta))

    def _groups(self, table: RawTable) -> np.ndarray:
        return np.char.add(np.char.add(table.source.astype(str), "\x00"), table.meta[self.spec.host_column].astype(str))

    def assign(self, table: RawTable) -> np.ndarray:
        """TRAIN, VAL or TEST per row: by capture where the split says so, otherwise by a
        seeded hash of the row's id (its file and line; with windows, its host's block of
        flows, so that a window rarely straddles two splits)."""
        n = len(table)
        if self.sample.window > 1:
            groups = self._groups(table)
            uniques, inverse = np.unique(groups, return_inverse=True)
            inverse = inverse.reshape(-1)
            before = np.array([self._host_rows.get(g, 0) for g in uniques], dtype=np.int64)
            blocks = (before[inverse] + rank_in_group(inverse)) // (BLOCK_WINDOWS * self.sample.window)
            counts = np.bincount(inverse, minlength=len(uniques))
            self._host_rows.update(zip(uniques.tolist(), (before + counts).tolist()))
            u = row_uniform(groups, blocks, self.split.seed)
        else:
            u = row_uniform(table.source, table.line, self.split.seed)
        part = np.full(n, TRAIN, dtype=np.int8)
        val_share = self.split.val_fraction
        if self.kind.kind == "random":
            part[u < self.split.test_fraction] = TEST
            u = (u - self.split.test_fraction) / (1 - self.split.test_fraction)  # uniform again over what is not test
            val_share = self.split.val_fraction / (1 - self.split.test_fraction)  # the same share of all rows
        elif self.kind.kind == "partition":
            values = table.meta[self.kind.key]
            self._found.update(np.unique(values.astype(str)).tolist())
            part[np.isin(values, self.split.test_partitions)] = TEST
        rest = part == TRAIN
        if self.split.validation.kind == "by_capture":
            values = table.meta[self.split.validation.partition_key]
            self._found.update(np.unique(values.astype(str)).tolist())
            part[rest & np.isin(values, list(self.split.validation.partitions))] = VAL
        else:
            part[rest & (u < val_share)] = VAL
        return part

    def windowed(self, train: RawTable, carry: RawTable | None) -> tuple[RawTable, np.ndarray]:
        """The chunk's training rows after ``carry`` (with context features, if on) and the
        windows of the chunk's rows, numbered in that whole. ``carry`` holds its context
        features already: they were computed over windows that reach further back."""
        carried = 0 if carry is None else len(carry)
        raw = carry if not (carried and self.sample.context) else _without_context(carry)
        base = concat([raw, train]) if carried else train
        windows = window_index(host_groups(base, self.spec.host_column), self.sample.window)
        if not self.sample.context:
            return base, windows[carried:]
        rows = np.arange(carried, len(base))
        train = add_numeric(train, context_features(windows, context_inputs(base, self.spec), rows))
        return (concat([carry, train]) if carried else train), windows[carried:]

    def add(self, path: Path, row_group: int, first_of_file: bool) -> None:
        if first_of_file:  # windows never cross files
            self._tail, self._host_rows = None, {}
        table = self.read(path, row_group)
        self.skipped.update(table.skipped)
        part = self.assign(table)
        for code in (VAL, TEST):
            if (part == code).any():
                self.held[code].append(table.take(np.flatnonzero(part == code)))
        train = table if (part == TRAIN).all() else table.take(np.flatnonzero(part == TRAIN))
        carry = None
        if self.sample.window > 1:
            if self._tail is not None:
                present = np.isin(self._groups(self._tail), self._groups(train))
                carry = self._tail.take(np.flatnonzero(present))
            whole, _ = self.windowed(train, carry)
            train = whole.take(np.arange(len(whole) - len(train), len(whole)))  # with its context features
            every = concat([self._tail, train]) if self._tail is not None else train
            self._tail = every.take(last_per_group(self._groups(every), self.sample.window - 1))
        self.chunks.append(Chunk(path, row_group, np.packbits(part == TRAIN), len(train), carry))
        if not len(train):
            return
        self.label_counts.update(train.labels.astype(str).tolist())
        if ATTACK_TYPE in train.meta:
            self.seen_types.update(str(t) for t in np.unique(train.meta[ATTACK_TYPE].astype(str)))
        self._fit(train)

    def _fit(self, train: RawTable) -> None:
        chunk = site_statistics(train, ranged_scaler(self.sample.scaler))
        if self.statistics is None:
            self.sketches = [QuantileSketch(seed=self.split.seed + j) for j in range(train.numeric.shape[1])]
        self.statistics = chunk if self.statistics is None else merged_statistics([self.statistics, chunk])
        if self.sample.scaler == "quantile":
            for sketch, column in zip(self.sketches, train.numeric.T):
                sketch.update(column)

    # --- the whole pass ---------------------------------------------------------------------
    def run(self, paths: list[Path]) -> None:
        listed = parquet_chunks(paths)
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, transient=True, disable=not listed) as progress:
            task = progress.add_task("scanning training files", total=len(listed))
            previous = None
            for path, row_group, _ in listed:
                self.add(path, row_group, first_of_file=path != previous)
                previous = path
                progress.advance(task)
        wanted = list(self.split.test_partitions if self.kind.kind == "partition" else [])
        wanted += list(self.split.validation.partitions if self.split.validation.kind == "by_capture" else [])
        missing = [p for p in wanted if p not in self._found]
        if missing:
            raise DataError(f"partitions {missing} are not among those read: {sorted(self._found)}")
        if self.statistics is None:
            raise DataError("no training rows in dataset.files: nothing to fit preprocessing on")

    def preprocessor(self, class_names: list[str]) -> Preprocessor:
        """The preprocessing fitted on the training rows: what :meth:`Preprocessor.fit` gives on
        them all (quantile knots exactly so up to the sketch's capacity, approximately beyond)."""
        sample = self.sample
        quantiles = [s.quantiles(QUANTILE_LEVELS) for s in self.sketches] if sample.scaler == "quantile" else None
        return Preprocessor.from_statistics(
            self.statistics, quantiles,
            dataset=self.spec.name, task=self.split.task, class_names=class_names, encoding=sample.categorical,
            scaler=sample.scaler, clip=sample.clip, window=sample.window,
        )  # fmt: skip

    def held_out(self, code: int) -> RawTable | None:
        parts = self.held[code]
        return concat(parts) if parts else None


def _without_context(table: RawTable) -> RawTable:
    keep = len(table.numeric_names) - len(CONTEXT_FEATURES)
    return RawTable(
        table.numeric[:, :keep], table.categorical, table.labels, table.numeric_names[:keep],
        table.categorical_names, table.line, table.source, list(table.skipped), dict(table.meta),
    )  # fmt: skip


class ChunkReader:
    """Reads a training chunk as model inputs and labels (what an epoch streams)."""

    def __init__(self, scan: Scan, encode_labels: Callable[[np.ndarray], np.ndarray], pre: Preprocessor):
        self.scan, self.encode_labels, self.pre = scan, encode_labels, pre

    def __call__(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        table = self.scan.read(chunk.path, chunk.row_group)
        rows = np.unpackbits(chunk.train, count=len(table)).astype(bool)
        train = table if rows.all() else table.take(np.flatnonzero(rows))  # a copy only when needed
        y = self.encode_labels(train.labels)
        if self.scan.sample.window == 1:
            return self.pre.transform(train)[0], y
        whole, windows = self.scan.windowed(train, chunk.carry)
        encoded = padded_table(self.pre.transform(whole)[0])
        return encoded[pointing_at_pad(windows, len(whole))], y


class StreamBatches:
    """Training :class:`StepChunk` s streamed from chunks (see the module's docstring).

    Epoch ``e`` reads the chunks in the order of a generator seeded with ``(seed, e)``; under
    DDP rank ``r`` reads every ``world_size``-th of them and every rank stops at the rows of the
    smallest share (equal steps, as DDP needs). Rows go through a buffer of ``buffer_rows``
    that is shuffled whenever a chunk arrives; training takes ``steps_per_chunk`` batches at a
    time from its front while more than ``buffer_rows`` rows wait. A thread reads and encodes
    the next chunk (and moves it to the GPU on a stream of its own) while the current one
    trains.
    """

    def __init__(
        self,
        chunks: list[Chunk],
        read: Callable[[Chunk], tuple[np.ndarray, np.ndarray]],
        batch_size: int,
        steps_per_chunk: int,
        buffer_rows: int,
        shuffle: bool = True,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ):
        if batch_size < 1 or steps_per_chunk < 1 or buffer_rows < 0:
            raise ValueError("batch_size and steps_per_chunk must be positive, buffer_rows not negative")
        self.chunks, self.read = [c for c in chunks if c.rows], read
        self.batch_size, self.steps_per_chunk, self.buffer_rows = batch_size, steps_per_chunk, buffer_rows
        self.shuffle, self.seed, self.epoch = shuffle, seed, epoch
        self.rank, self.world_size, self.device = rank, world_size, torch.device(device)

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(len(self.chunks)))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch())
        return torch.randperm(len(self.chunks), generator=generator).tolist()

    def _rows(self, order: list[int]) -> int:
        """Rows every rank trains on this epoch: the smallest rank's share."""
        shares = [sum(self.chunks[i].rows for i in order[r :: self.world_size]) for r in range(self.world_size)]
        return min(shares)

    def __len__(self) -> int:
        return -(-self._rows(self._order()) // (self.batch_size * self.steps_per_chunk))

    def steps_per_epoch(self, chunks: int | float) -> int:
        """Optimizer steps in the first ``chunks`` chunks of an epoch (what a bar should count)."""
        return int(min(chunks * self.steps_per_chunk, -(-self._rows(self._order()) // self.batch_size)))

    def _produce(self, mine: list[int], ready: queue.Queue, stop: threading.Event) -> None:
        side = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        try:
            for i in mine:
                x, y = self.read(self.chunks[i])
                item = (torch.from_numpy(x), torch.from_numpy(y), None)
                if side is not None:  # the next chunk crosses to the GPU while this one trains
                    with torch.cuda.stream(side):
                        moved = [t.pin_memory().to(self.device, non_blocking=True) for t in item[:2]]
                        done = torch.cuda.Event()
                        done.record(side)
                    item = (*moved, done)
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as err:  # raised again in the training loop
            ready.put((err, None, None))
            return
        ready.put(None)

    def __iter__(self) -> Iterator[StepChunk]:
        order = self._order()
        limit, block = self._rows(order), self.batch_size * self.steps_per_chunk
        generator = torch.Generator(device=self.device).manual_seed(
            (self.seed * 1_000_003 + self.epoch()) * 131 + self.rank
        )
        ready: queue.Queue = queue.Queue(maxsize=1)  # one chunk ready while one trains: double buffering
        stop = threading.Event()
        worker = threading.Thread(
            target=self._produce, args=(order[self.rank :: self.world_size], ready, stop), daemon=True
        )
        worker.start()
        x = torch.empty(0, device=self.device)
        y = torch.empty(0, dtype=torch.long, device=self.device)
        sent = 0
        try:
            while (item := ready.get()) is not None and sent < limit:
                if isinstance(item[0], BaseException):
                    raise item[0]
                if item[2] is not None:  # made on the reading thread's stream, used on this one
                    current = torch.cuda.current_stream(self.device)
                    current.wait_event(item[2])
                    for tensor in item[:2]:
                        tensor.record_stream(current)
                x, y = (torch.cat([x, item[0]]), torch.cat([y, item[1]])) if len(y) else item[:2]
                if self.shuffle:
                    mixed = torch.randperm(len(y), generator=generator, device=self.device)
                    x, y = x[mixed], y[mixed]
                while len(y) >= self.buffer_rows + block and sent < limit:
                    take = min(block, limit - sent)
                    yield self._step_chunk(x[:take], y[:take])
                    x, y, sent = x[take:], y[take:], sent + take
            while len(y) and sent < limit:
                take = min(block, limit - sent, len(y))
                yield self._step_chunk(x[:take], y[:take])
                x, y, sent = x[take:], y[take:], sent + take
        finally:
            stop.set()
            while worker.is_alive():  # let a blocked producer see the stop
                with contextlib.suppress(queue.Empty):
                    ready.get(timeout=0.1)

    def _step_chunk(self, x: torch.Tensor, y: torch.Tensor) -> StepChunk:
        starts = range(0, len(y), self.batch_size)
        return StepChunk(x, y, [torch.arange(s, min(s + self.batch_size, len(y)), device=y.device) for s in starts])
