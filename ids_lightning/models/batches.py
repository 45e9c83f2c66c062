"""Batches cut from whole-split tensors: the neutral ground between the data and the models.

Each split is one tensor on the training device; a batch is an index slice of it, so a step
costs one gather instead of ``batch_size`` Python ``__getitem__`` calls and a collate. Training
hands Lightning :class:`StepChunk` s of several steps, which amortises its per-batch overhead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch


class WindowedFeatures:
    """Model inputs of windowed samples, gathered on demand: ``self[index]`` is
    ``[len(index), window, F + 1]``, rows of ``table`` (``[n + 1, F + 1]``, flows with a 1 in
    the last channel, then the zero padding row) at ``windows[index]`` (int32 ``[n, window]``).

    Memory is the table plus ``n * window * 4`` bytes of row numbers, never a window-fold copy.
    Quacks like the feature tensor of a one-flow split where batches, the training step and its
    CUDA graph use one (length, device, indexing, moving, pinning).
    """

    def __init__(self, table: torch.Tensor, windows: torch.Tensor):
        if windows.dtype != torch.int32 or windows.dim() != 2:
            raise ValueError("windows must be an int32 [samples, window] tensor")
        self.table, self.windows = table, windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index) -> torch.Tensor:
        return self.table[self.windows[index]]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.windows), self.windows.shape[1], self.table.shape[1])

    def current_flows(self) -> torch.Tensor:
        """``[n, F]``: each sample's own (last) flow, without the presence channel: what a
        model of single flows (with context features, if any) sees."""
        return self.table[self.windows[:, -1], :-1]

    @property
    def device(self) -> torch.device:
        return self.table.device

    @property
    def nbytes(self) -> int:
        return self.table.nbytes + self.windows.nbytes

    def to(self, *args, **kwargs) -> WindowedFeatures:
        return WindowedFeatures(self.table.to(*args, **kwargs), self.windows.to(*args, **kwargs))

    def cpu(self) -> WindowedFeatures:
        return self.to("cpu")

    def is_pinned(self) -> bool:
        return self.table.is_pinned()

    def pin_memory(self) -> WindowedFeatures:
        return WindowedFeatures(self.table.pin_memory(), self.windows.pin_memory())


Features = torch.Tensor | WindowedFeatures


@dataclass(frozen=True)
class StepChunk:
    """Several training steps at once: step ``i`` uses rows ``index[i]`` of ``features``/``labels``
    (``[batch]``, or ``[seeds, batch]`` when several seeds train together, one row order each).

    Handing Lightning a chunk of steps per loop iteration amortises its per-batch overhead
    (hooks, progress bar, logging), which at batch 64 on a GPU costs more than the step itself.
    The rows are gathered only when a step runs, on the device, from the whole split.
    """

    features: Features
    labels: torch.Tensor
    index: list[torch.Tensor]

    def __len__(self) -> int:
        return sum(i.numel() for i in self.index)

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
        rows = torch.cat([i.reshape(-1) for i in self.index])
        local = torch.arange(len(rows), device=device).split([i.numel() for i in self.index])
        return StepChunk(
            self.features[rows].to(device, *args, **kwargs),
            self.labels[rows].to(device, *args, **kwargs),
            [part.reshape(i.shape) for part, i in zip(local, self.index)],
        )


class InMemoryBatches:
    """Batches cut from whole-split tensors: ``(x, y)`` tuples, or :class:`StepChunk` s of
    ``steps_per_chunk`` batches each for training.

    Shuffling draws a permutation from a generator seeded with ``(seed, epoch)``, so the order
    of any epoch is reproducible, also after a resume. With a list of seeds (several seeds
    trained together) a chunk's step indices are ``[seeds, batch]``: row ``k`` is the order
    that seed ``k`` alone would give. Under DDP each rank takes every ``world_size``-th row of
    the permutation (equal shares; the tail is dropped).
    """

    def __init__(
        self,
        x: Features,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int | Sequence[int] = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
        steps_per_chunk: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if steps_per_chunk is not None and steps_per_chunk < 1:
            raise ValueError(f"steps_per_chunk must be positive, got {steps_per_chunk}")
        # several seeds (a list, or the ListConfig a config makes of one): one row order each
        self.seeds = None if isinstance(seed, int) else [int(s) for s in seed]
        if self.seeds is not None and not (shuffle and steps_per_chunk is not None):
            raise ValueError("a list of seeds needs shuffled chunks of steps (one row order per seed)")
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

    def steps_per_epoch(self, chunks: int | float) -> int:
        """Optimizer steps in the first ``chunks`` chunks of an epoch (what a bar should count)."""
        if self.steps_per_chunk is None:
            return int(min(chunks, self._num_batches()))
        return int(min(chunks * self.steps_per_chunk, self._num_batches()))

    def _order(self) -> torch.Tensor | None:
        """Row order of this epoch and rank; None means rows 0..n-1 in place."""
        n, device = len(self.x), self.x.device
        order = None
        if self.shuffle:
            orders = [self._permutation(n, seed, device) for seed in self.seeds or [self.seed]]
            order = orders[0] if self.seeds is None else torch.stack(orders)
        if self.world_size > 1:
            base = order if order is not None else torch.arange(n, device=device)
            order = base[..., self.rank : self._rows() * self.world_size : self.world_size]
        if order is None and self.steps_per_chunk is not None:
            order = torch.arange(n, device=device)
        return order

    def _permutation(self, n: int, seed: int, device: torch.device) -> torch.Tensor:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed * 1_000_003 + self.epoch())
        return torch.randperm(n, generator=generator, device=device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor] | StepChunk]:
        order = self._order()
        starts = range(0, self._rows(), self.batch_size)
        if self.steps_per_chunk is not None:
            index = [order[..., s : s + self.batch_size] for s in starts]
            for c in range(0, len(index), self.steps_per_chunk):
                yield StepChunk(self.x, self.y, index[c : c + self.steps_per_chunk])
        elif order is None:  # contiguous views, no copy
            for s in starts:
                yield self.x[s : s + self.batch_size], self.y[s : s + self.batch_size]
        else:
            for s in starts:
                index = order[s : s + self.batch_size]
                yield self.x[index], self.y[index]
