"""Base DataModule for flow tables: parse, split, fit preprocessing on train, serve tensors.

Each split is one float tensor on the training device; a batch is an index slice of it, so a
step costs one gather instead of ``batch_size`` Python ``__getitem__`` calls and a collate.
A split too large for the GPU stays in host memory and only each chunk's rows are moved.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

from ids_lightning.data.balance import METHODS as BALANCE_METHODS
from ids_lightning.data.balance import class_weights, resample
from ids_lightning.preprocess import Preprocessor
from ids_lightning.table import RawTable

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


@dataclass(frozen=True)
class StepChunk:
    """Several training steps at once: step ``i`` uses rows ``index[i]`` of ``features``/``labels``.

    Handing Lightning a chunk of steps per loop iteration amortises its per-batch overhead
    (hooks, progress bar, logging), which at batch 64 on a GPU costs more than the step itself.
    The rows are gathered only when a step runs, on the device, from the whole split.
    """

    features: torch.Tensor
    labels: torch.Tensor
    index: list[torch.Tensor]

    def __len__(self) -> int:
        return sum(len(i) for i in self.index)

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in self.index:
            yield self.features[index], self.labels[index]

    def to(self, device: torch.device | str, *args, **kwargs) -> StepChunk:
        """Lightning's device transfer: a no-op when the split already lives on ``device``;
        otherwise (a split kept in host memory) only this chunk's rows are moved."""
        device = torch.device(device)
        here = self.features.device
        if here.type == device.type and device.index in (None, here.index):
            return self
        rows = torch.cat(self.index)
        sizes = [len(i) for i in self.index]
        local = torch.arange(len(rows), device=device)
        return StepChunk(
            self.features[rows].to(device, *args, **kwargs),
            self.labels[rows].to(device, *args, **kwargs),
            list(local.split(sizes)),
        )


class InMemoryBatches:
    """Batches cut from whole-split tensors: ``(x, y)`` tuples, or :class:`StepChunk` s of
    ``steps_per_chunk`` batches each for training.

    Shuffling draws a permutation from a generator seeded with ``(seed, epoch)``, so the order
    of any epoch is reproducible, also after a resume. Under DDP each rank takes every
    ``world_size``-th row of the permutation (equal shares; the tail is dropped).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
        steps_per_chunk: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if steps_per_chunk is not None and steps_per_chunk < 1:
            raise ValueError(f"steps_per_chunk must be positive, got {steps_per_chunk}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, epoch
        self.rank, self.world_size = rank, world_size
        self.steps_per_chunk = steps_per_chunk

    def _rows(self) -> int:
        return len(self.x) // self.world_size if self.world_size > 1 else len(self.x)

    def _num_batches(self) -> int:
        return -(-self._rows() // self.batch_size)

    def __len__(self) -> int:
        if self.steps_per_chunk is None:
            return self._num_batches()
        return -(-self._num_batches() // self.steps_per_chunk)

    def _order(self) -> torch.Tensor | None:
        """Row order of this epoch and rank; None means rows 0..n-1 in place."""
        n, device = len(self.x), self.x.device
        order = None
        if self.shuffle:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed * 1_000_003 + self.epoch())
            order = torch.randperm(n, generator=generator, device=device)
        if self.world_size > 1:
            base = order if order is not None else torch.arange(n, device=device)
            order = base[self.rank : self._rows() * self.world_size : self.world_size]
        if order is None and self.steps_per_chunk is not None:
            order = torch.arange(n, device=device)
        return order

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor] | StepChunk]:
        order = self._order()
        starts = range(0, self._rows(), self.batch_size)
        if self.steps_per_chunk is not None:
            index = [order[s : s + self.batch_size] for s in starts]
            for c in range(0, len(index), self.steps_per_chunk):
                yield StepChunk(self.x, self.y, index[c : c + self.steps_per_chunk])
        elif order is None:  # contiguous views, no copy
            for s in starts:
                yield self.x[s : s + self.batch_size], self.y[s : s + self.batch_size]
        else:
            for s in starts:
                index = order[s : s + self.batch_size]
                yield self.x[index], self.y[index]


class TabularDataModule(L.LightningDataModule):
    """Shared machinery; a subclass only implements :meth:`load_splits` (and may download).

    ``load_splits`` returns raw train/val/test tables whose ``labels`` are class names under the
    configured task, plus the ordered class names. Validation and test rows of a class the
    model cannot output (absent from training) are dropped and counted, never silently.
    """

    name = "tabular"

    def __init__(
        self,
        data_dir: str,
        task: str,
        split: str,
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
        bad_rows: str = "error",
        output_dir: str | None = None,
    ):
        super().__init__()
        if bad_rows not in ("error", "skip"):
            raise ValueError(f"dataset.bad_rows must be 'error' or 'skip', not {bad_rows!r}")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.task, self.split = task, split
        self.categorical, self.scaler, self.clip = categorical, scaler, clip
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.steps_per_chunk, self.device_memory_fraction = steps_per_chunk, device_memory_fraction
        if balance not in BALANCE_METHODS:
            raise ValueError(f"dataset.balance must be one of {BALANCE_METHODS}, not {balance!r}")
        self.balance, self.k_neighbors = balance, k_neighbors
        self.class_weights: list[float] | None = None
        self.seed, self.bad_rows = seed, bad_rows
        self.output_dir = Path(output_dir) if output_dir else None
        self.preprocessor: Preprocessor | None = None
        self.tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.stats: dict = {}
        self.extra_stats: dict = {}  # dataset-specific facts for metrics.json

    # --- subclass interface ------------------------------------------------------------------
    def load_splits(self) -> tuple[dict[str, RawTable], list[str]]:
        raise NotImplementedError

    # --- setup ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.preprocessor is not None:
            return
        tables, class_names = self.load_splits()
        dropped = {}
        for stage_name in ("val", "test"):
            known = np.isin(tables[stage_name].labels.astype(str), class_names)
            dropped[stage_name] = int((~known).sum())
            if dropped[stage_name]:
                unseen = Counter(tables[stage_name].labels[~known].tolist())
                log.warning(
                    "%s: dropped %d %s rows of classes absent from training: %s",
                    self.name,
                    dropped[stage_name],
                    stage_name,
                    dict(unseen.most_common()),
                )
                tables[stage_name] = tables[stage_name].take(np.flatnonzero(known))
        self.preprocessor = Preprocessor.fit(
            tables["train"],
            dataset=self.name,
            task=self.task,
            class_names=class_names,
            encoding=self.categorical,
            scaler=self.scaler,
            clip=self.clip,
        )
        unknown_rows, notes = {}, []
        for stage_name in STAGES:
            scaled, codes = self.preprocessor.scale(tables[stage_name])
            y = self.preprocessor.encode_labels(tables[stage_name].labels)
            unknown_rows[stage_name] = int((codes == 0).any(axis=1).sum())
            if stage_name == "train":
                counts_before = self._counts(y, class_names)
                scaled, codes, y, notes = resample(scaled, codes, y, self.balance, self.k_neighbors, self.seed)
            x = self.preprocessor.encode(scaled, codes)
            self.tensors[stage_name] = (torch.from_numpy(x), torch.from_numpy(y))
        if self.balance == "class_weight":
            self.class_weights = class_weights(self.tensors["train"][1].numpy(), len(class_names))
        # Tables cut from one file share its skip records: a set counts each row once.
        skipped_rows = sorted({row for table in tables.values() for row in table.skipped})
        self.stats = {
            "balance": self.balance,
            "class_counts_before_balance": {"train": counts_before},
            "class_counts": {s: self._counts(self.tensors[s][1].numpy(), class_names) for s in STAGES},
            "balance_notes": notes,
            "rows_skipped": len(skipped_rows),
            "rows_skipped_examples": [f"{src}:{line}: {why}" for src, line, why in skipped_rows[:20]],
            "rows_dropped_unseen_class": dropped,
            "rows_with_unknown_category": unknown_rows,
            **self.extra_stats,
        }
        self._log_summary()
        if self.output_dir is not None:
            self.preprocessor.save(self.output_dir / "preprocess.json")

    @staticmethod
    def _counts(y: np.ndarray, class_names: list[str]) -> dict[str, int]:
        return dict(zip(class_names, np.bincount(y, minlength=len(class_names)).tolist()))

    def _log_summary(self) -> None:
        if self.balance not in ("none", "class_weight"):
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
        for stage_name in STAGES:
            log.info("%s %s split: %s", self.name, stage_name, self.stats["class_counts"][stage_name])
        if self.stats["rows_skipped"]:
            log.warning(
                "%s: skipped %d malformed rows (bad_rows=skip), e.g. %s",
                self.name,
                self.stats["rows_skipped"],
                self.stats["rows_skipped_examples"][:3],
            )

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
    def _place(self, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
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

    def train_dataloader(self) -> InMemoryBatches:
        x, y = self._place("train")
        trainer = self.trainer
        distributed = trainer is not None and trainer.world_size > 1
        return InMemoryBatches(
            x,
            y,
            self.batch_size,
            # overfit_batches must see the same batches every epoch
            shuffle=not (trainer is not None and trainer.overfit_batches),
            seed=self.seed,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            rank=trainer.global_rank if distributed else 0,
            world_size=trainer.world_size if distributed else 1,
            steps_per_chunk=self.steps_per_chunk,
        )

    def val_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self._place("val"), self.eval_batch_size)

    def test_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self._place("test"), self.eval_batch_size)
