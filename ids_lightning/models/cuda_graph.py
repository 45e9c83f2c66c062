"""Training steps captured in CUDA graphs, several steps per replay, and the chunk runner that
feeds them.

At batch 64 a GPU spends its time waiting for kernel launches from Python; replaying a graph
launches whole steps (gather, forward, loss, backward, fused Adam) at once. The maths is the
eager step's: warm-up iterations, which CUDA graph capture needs, are undone before capture,
so replay ``k`` starts from the same weights and optimizer state as eager step ``k``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightning as L
import torch

from ids_lightning.models.batches import StepChunk

CAPTURABLE = (torch.optim.Adam, torch.optim.AdamW)


class CUDAGraphTrainStep:
    """Capture ``steps`` consecutive training steps of one index shape: each
    ``step_fn(features, labels, index)`` + ``optimizer.step()``.

    ``step_fn`` must compute the loss and call ``backward``; ``features``/``labels`` are whole
    device-resident splits whose storage stays put, ``index`` a static ``[steps, *index_shape]``
    buffer of row numbers that :meth:`replay` refills. ``running`` tensors (statistics that
    ``step_fn`` accumulates) are put back to their values before the warm-up.
    """

    def __init__(
        self,
        step_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None],
        optimizer: torch.optim.Optimizer,
        features: torch.Tensor,
        labels: torch.Tensor,
        index_shape: Sequence[int],
        steps: int,
        running: list[torch.Tensor],
        warmup: int = 3,
    ):
        if features.device.type != "cuda":
            raise ValueError("CUDA graphs need the training split on the GPU (it did not fit or CUDA is off)")
        if not isinstance(optimizer, CAPTURABLE) or not optimizer.defaults.get("capturable"):
            raise ValueError("CUDA graphs need torch.optim.Adam/AdamW built with capturable=True")
        self.features, self.labels, self.steps = features, labels, steps
        rows = torch.arange(steps * int(torch.Size(index_shape).numel()), device=features.device) % len(features)
        self.index = rows.reshape(steps, *index_shape)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        saved_params = [p.detach().clone() for p in params]
        saved_state = {id(t): t.clone() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)}
        saved_running = [t.clone() for t in running]

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self._steps(step_fn, optimizer)
        torch.cuda.current_stream().wait_stream(side)

        with torch.no_grad():  # undo the warm-up: same starting point as the eager path
            for param, saved in zip(params, saved_params):
                param.copy_(saved)
            for state in optimizer.state.values():
                for value in state.values():
                    if torch.is_tensor(value):
                        value.copy_(saved_state[id(value)]) if id(value) in saved_state else value.zero_()
            for tensor, saved in zip(running, saved_running):
                tensor.copy_(saved)

        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._steps(step_fn, optimizer)

    def _steps(self, step_fn, optimizer: torch.optim.Optimizer) -> None:
        for index in self.index:
            # new gradients each step: inside the graph, each backward writes its own buffers
            optimizer.zero_grad(set_to_none=True)
            step_fn(self.features, self.labels, index)
            optimizer.step()

    def replay(self, index: torch.Tensor) -> None:
        self.index.copy_(index, non_blocking=True)
        self.graph.replay()


class ChunkedTraining(L.LightningModule):
    """Runs the steps of a :class:`StepChunk` under manual optimization: on a GPU with
    ``cuda_graph``, runs of ``graph_steps`` full-size steps as one graph replay (shorter runs
    one step per replay), everything else eagerly. A subclass provides ``_train_math`` (one
    step's forward, loss, backward and statistics, without host synchronisation) and
    ``_running_statistics``."""

    cuda_graph: bool = False
    graph_steps: int = 1

    def _train_math(self, features: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> None:
        raise NotImplementedError

    def _running_statistics(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def _reset_graphs(self) -> None:
        self._graphs: dict[int, CUDAGraphTrainStep] = {}
        self._graph_shape: torch.Size | None = None

    @property
    def _use_graph(self) -> bool:
        return self.cuda_graph and self.device.type == "cuda"

    def _run_chunk(self, chunk: StepChunk) -> None:
        optimizer = self.optimizers()
        steps, i = chunk.index, 0
        while i < len(steps):
            shape = steps[i].shape
            # Graphs are captured for the first index shape seen; the short last batch of an
            # epoch runs the same maths eagerly.
            if self._use_graph and self._graph_shape in (None, shape):
                self._graph_shape = shape
                run = 1
                while run < self.graph_steps and i + run < len(steps) and steps[i + run].shape == shape:
                    run += 1
                count = self.graph_steps if run == self.graph_steps else 1
                self._replay(chunk, optimizer, steps[i : i + count])
                i += count
            else:
                optimizer.zero_grad(set_to_none=not self.cuda_graph)  # graph grads are static buffers
                self._train_math(chunk.features, chunk.labels, steps[i])
                optimizer.step()
                i += 1

    def _replay(self, chunk: StepChunk, optimizer, indices: list[torch.Tensor]) -> None:
        graph = self._graphs.get(len(indices))
        if graph is not None and graph.features is not chunk.features:  # a new split: capture again
            self._graphs.clear()
            graph = None
        if graph is None:
            graph = CUDAGraphTrainStep(
                self._train_math,
                optimizer.optimizer,
                chunk.features,
                chunk.labels,
                self._graph_shape,
                len(indices),
                running=self._running_statistics(),
            )
            self._graphs[len(indices)] = graph
        graph.replay(torch.stack(indices))
        # Lightning counts a step when its optimizer wrapper steps; the graph stepped by itself.
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        for _ in indices:
            progress.increment_ready()
            progress.increment_completed()
