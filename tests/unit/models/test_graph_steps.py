"""How a chunk's steps are grouped into CUDA graph replays (the grouping runs on any device)."""

from __future__ import annotations

import torch

from ids_lightning.models.batches import StepChunk
from ids_lightning.models.cuda_graph import ChunkedTraining


class Recorder(ChunkedTraining):
    """Pretends to hold CUDA graphs: records what would be replayed and what would run eagerly."""

    def __init__(self, graph_steps: int):
        super().__init__()
        self.cuda_graph, self.graph_steps, self.calls = True, graph_steps, []
        self._reset_graphs()

    @property
    def _use_graph(self) -> bool:
        return True

    def optimizers(self):
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)

    def _replay(self, chunk, optimizer, indices) -> None:
        self.calls.append(("replay", [len(i) for i in indices]))

    def _train_math(self, features, labels, index) -> None:
        self.calls.append(("eager", len(index)))


def chunk(sizes: list[int]) -> StepChunk:
    return StepChunk(torch.zeros(100, 1), torch.zeros(100), [torch.arange(size) for size in sizes])


def test_full_size_steps_replay_graph_steps_at_a_time_and_the_short_batch_runs_eagerly():
    module = Recorder(graph_steps=4)
    module._run_chunk(chunk([64] * 10 + [30]))
    assert module.calls == [
        ("replay", [64] * 4),
        ("replay", [64] * 4),
        ("replay", [64]),  # fewer than graph_steps left: one step per replay
        ("replay", [64]),
        ("eager", 30),
    ]


def test_the_graph_shape_is_the_first_one_seen():
    module = Recorder(graph_steps=2)
    module._run_chunk(chunk([64, 64]))
    module._run_chunk(chunk([64, 10, 64]))
    assert module.calls == [("replay", [64, 64]), ("replay", [64]), ("eager", 10), ("replay", [64])]
