"""Out-of-core building blocks: the row hash of random splits, the quantile sketch, and the
streamed training batches (chunk order, shuffle buffer, DDP shares)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ids_lightning.core.stream import QuantileSketch, row_uniform
from ids_lightning.data.streaming import Chunk, StreamBatches
from tests.helpers import run_if


def test_row_hash_depends_on_the_row_and_seed_only():
    names = np.array(["a.log", "b.log"] * 50_000, dtype=object)
    lines = np.arange(100_000)
    whole = row_uniform(names, lines, seed=3)
    order = np.random.default_rng(0).permutation(100_000)
    parts = [row_uniform(names[p], lines[p], seed=3) for p in np.array_split(order, 7)]
    assert np.array_equal(np.concatenate(parts), whole[order])  # chunking and order change nothing
    assert not np.array_equal(row_uniform(names, lines, seed=4), whole)
    assert whole.min() >= 0 and whole.max() < 1
    counts = np.histogram(whole, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 10_000) < 500)  # uniform: ~5 standard deviations


def test_sketch_is_exact_until_its_capacity():
    values = np.random.default_rng(1).lognormal(2, 2, 5_000)
    sketch = QuantileSketch(capacity=5_000)
    for part in np.array_split(values, 9):
        sketch.update(part)
    levels = np.linspace(0, 1, 1001)
    assert sketch.exact
    assert np.array_equal(sketch.quantiles(levels), np.quantile(values, levels))


def test_sketch_rank_error_stays_small_beyond_its_capacity():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.lognormal(3, 2, 150_000), np.zeros(50_000)])  # a tie over a quarter
    rng.shuffle(values)
    sketch = QuantileSketch(capacity=1_000, seed=5)
    for part in np.array_split(values, 40):
        sketch.update(part)
    assert not sketch.exact and sum(len(p) for parts in sketch.levels for p in parts) < 20_000
    levels = np.linspace(0, 1, 1001)
    knots, ordered, n = sketch.quantiles(levels), np.sort(values), len(values)
    low = np.searchsorted(ordered, knots, "left") / (n - 1)
    high = (np.searchsorted(ordered, knots, "right") - 1) / (n - 1)
    error = np.maximum(low - levels, 0) + np.maximum(levels - high, 0)  # how far the level is from the knot's ranks
    assert error.max() < 0.01


def _chunks(sizes: list[int]) -> tuple[list[Chunk], callable]:
    """Chunks whose rows are numbered globally: x = [row], y = row % 3."""
    starts = np.cumsum([0, *sizes])
    chunks = [Chunk(path=None, row_group=i, train=np.zeros(0, np.uint8), rows=n) for i, n in enumerate(sizes)]

    def read(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(starts[chunk.row_group], starts[chunk.row_group + 1])
        return rows.astype(np.float32)[:, None], rows % 3

    return chunks, read


def _epoch(loader: StreamBatches) -> list[np.ndarray]:
    rows = []
    for chunk in loader:
        assert len(chunk.index) <= loader.steps_per_chunk
        assert all(len(i) <= loader.batch_size for i in chunk.index)
        for x, y in chunk.batches():
            assert torch.equal(y, x[:, 0].long() % 3)  # features and labels travel together
            rows.append(x[:, 0].long().numpy())
    return rows


def test_an_epoch_trains_on_every_row_once_in_a_seeded_order():
    chunks, read = _chunks([700, 0, 1300, 450, 990])
    epoch = {"n": 0}
    loader = StreamBatches(chunks, read, 64, 4, buffer_rows=500, seed=7, epoch=lambda: epoch["n"])
    first = _epoch(loader)
    assert len(list(loader)) == len(loader)
    assert np.array_equal(np.sort(np.concatenate(first)), np.arange(3440))
    assert sum(len(b) for b in first[:-1]) % 64 == 0 and loader.steps_per_epoch(len(loader)) == len(first)
    assert [b.tolist() for b in _epoch(loader)] == [b.tolist() for b in first]  # same seed, same epoch
    epoch["n"] = 1
    second = np.concatenate(_epoch(loader))
    assert not np.array_equal(second, np.concatenate(first))
    assert np.array_equal(np.sort(second), np.arange(3440))
    # the buffer mixes chunks: rows that waited in it train beside the next chunk's
    ends = np.cumsum([700, 1300, 450, 990])
    assert any(len(set(np.searchsorted(ends, batch, "right").tolist())) > 1 for batch in first)


def test_unshuffled_streams_keep_file_order():
    chunks, read = _chunks([100, 250])
    loader = StreamBatches(chunks, read, 32, 2, buffer_rows=0, shuffle=False)
    assert np.array_equal(np.concatenate(_epoch(loader)), np.arange(350))


def test_ddp_ranks_read_their_own_chunks_and_take_equal_steps():
    chunks, read = _chunks([400, 300, 500, 200, 350])
    ranks = [StreamBatches(chunks, read, 50, 2, buffer_rows=100, seed=1, rank=r, world_size=2) for r in (0, 1)]
    rows = [np.concatenate(_epoch(loader)) for loader in ranks]
    assert len(rows[0]) == len(rows[1]) and len(ranks[0]) == len(ranks[1])
    assert not set(rows[0].tolist()) & set(rows[1].tolist())
    starts = np.cumsum([0, 400, 300, 500, 200])
    owners = [set(np.searchsorted(starts, r, "right").tolist()) for r in rows]
    assert not owners[0] & owners[1]  # whole chunks per rank


def test_stopping_early_ends_the_reading_thread():
    chunks, read = _chunks([1000] * 20)
    loader = StreamBatches(chunks, read, 10, 1, buffer_rows=0)
    before = threading.active_count()
    iterator = iter(loader)
    next(iterator)
    iterator.close()  # what a limit on training batches does
    assert threading.active_count() == before


def test_a_failing_read_reaches_the_training_loop():
    chunks, _ = _chunks([100, 100])

    def broken(chunk: Chunk):
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(StreamBatches(chunks, broken, 10, 1, buffer_rows=0))


@run_if(cuda=True)
def test_chunks_reach_the_gpu_from_the_reading_thread():
    chunks, read = _chunks([3000, 2000, 4000])
    loader = StreamBatches(chunks, read, 256, 4, buffer_rows=1000, seed=2, device="cuda")
    rows = []
    for chunk in loader:
        assert chunk.features.is_cuda and chunk.labels.is_cuda
        rows.extend(x[:, 0].long().cpu() for x, _ in chunk.batches())
    assert torch.equal(torch.cat(rows).sort().values, torch.arange(9000))
