"""The in-memory batch iterable and step chunks: every row once, seeded orders, disjoint shards."""

from __future__ import annotations

import pytest
import torch

from ids_lightning.models.batches import InMemoryBatches, StepChunk


def test_batches_cover_every_row_once_in_a_seeded_order():
    x = torch.arange(10.0).unsqueeze(1)
    y = torch.arange(10)
    epoch = {"n": 0}
    batches = InMemoryBatches(x, y, batch_size=4, shuffle=True, seed=3, epoch=lambda: epoch["n"])
    assert len(batches) == 3
    first = torch.cat([b[1] for b in batches])
    assert sorted(first.tolist()) == list(range(10))
    assert torch.equal(torch.cat([b[0][:, 0] for b in batches]).long(), torch.cat([b[1] for b in batches]))
    assert torch.equal(first, torch.cat([b[1] for b in batches]))  # same epoch, same order
    epoch["n"] = 1
    assert not torch.equal(first, torch.cat([b[1] for b in batches]))
    plain = InMemoryBatches(x, y, batch_size=4)
    assert torch.cat([b[1] for b in plain]).tolist() == list(range(10))


def test_batches_shard_disjointly_across_ranks():
    x, y = torch.zeros(11, 1), torch.arange(11)
    shards = [torch.cat([b[1] for b in InMemoryBatches(x, y, 2, shuffle=True, rank=r, world_size=3)]) for r in range(3)]
    assert all(len(s) == 3 for s in shards)
    assert len(set(torch.cat(shards).tolist())) == 9


def test_host_resident_chunk_moves_only_its_rows():
    x, y = torch.arange(20.0).unsqueeze(1), torch.arange(20)
    chunk = StepChunk(x, y, [torch.tensor([3, 7]), torch.tensor([11])])
    assert chunk.to("cpu") is chunk
    moved = chunk.to("meta")
    assert moved.features.shape == (3, 1) and moved.features.device.type == "meta"
    assert [len(i) for i in moved.index] == [2, 1]
    assert [b[1].tolist() for b in chunk.batches()] == [[3, 7], [11]]


def test_several_seeds_each_get_the_order_of_their_own_run():
    x, y = torch.zeros(10, 1), torch.arange(10)
    epoch = {"n": 2}
    chunks = list(InMemoryBatches(x, y, 4, shuffle=True, seed=[5, 6], epoch=lambda: epoch["n"], steps_per_chunk=2))
    for row, seed in enumerate((5, 6)):
        alone = InMemoryBatches(x, y, 4, shuffle=True, seed=seed, epoch=lambda: epoch["n"], steps_per_chunk=2)
        want = [index for chunk in alone for index in chunk.index]
        got = [index[row] for chunk in chunks for index in chunk.index]
        assert [g.tolist() for g in got] == [w.tolist() for w in want]
    assert sum(len(chunk) for chunk in chunks) == 2 * 10  # rows of both seeds counted


def test_several_seeds_need_shuffled_chunks():
    with pytest.raises(ValueError, match="shuffled chunks"):
        InMemoryBatches(torch.zeros(4, 1), torch.arange(4), 2, shuffle=True, seed=[1, 2])
