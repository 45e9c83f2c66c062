"""The in-memory batch iterable and step chunks: every row once, seeded orders, disjoint shards."""

from __future__ import annotations

import torch

from ids_lightning.batches import InMemoryBatches, StepChunk


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
