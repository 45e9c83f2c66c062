"""A whole training step (gather, forward, loss, backward, fused Adam) captured in one CUDA graph.

At batch 64 a GPU spends its time waiting for kernel launches from Python; replaying a graph
launches the whole step at once. The maths is the eager step's: warm-up iterations, which
CUDA graph capture needs, are undone before capture, so replay ``k`` starts from the same
weights and optimizer state as eager step ``k``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CAPTURABLE = (torch.optim.Adam, torch.optim.AdamW)


class CUDAGraphTrainStep:
    """Capture ``step_fn(features, labels, index)`` + ``optimizer.step()`` for one batch size.

    ``step_fn`` must compute the loss and call ``backward``; ``features``/``labels`` are whole
    device-resident splits whose storage stays put, ``index`` a static buffer of row numbers
    that :meth:`replay` refills. ``reset`` tensors (running statistics updated by ``step_fn``)
    are zeroed after warm-up.
    """

    def __init__(
        self,
        step_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None],
        optimizer: torch.optim.Optimizer,
        features: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        reset: list[torch.Tensor],
        warmup: int = 3,
    ):
        if features.device.type != "cuda":
            raise ValueError("CUDA graphs need the training split on the GPU (it did not fit or CUDA is off)")
        if not isinstance(optimizer, CAPTURABLE) or not optimizer.defaults.get("capturable"):
            raise ValueError("CUDA graphs need torch.optim.Adam/AdamW built with capturable=True")
        self.features, self.labels = features, labels
        self.index = torch.arange(batch_size, device=features.device) % len(features)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        saved_params = [p.detach().clone() for p in params]
        saved_state = {id(t): t.clone() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)}

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                optimizer.zero_grad(set_to_none=True)
                step_fn(features, labels, self.index)
                optimizer.step()
        torch.cuda.current_stream().wait_stream(side)

        with torch.no_grad():  # undo the warm-up: same starting point as the eager path
            for param, saved in zip(params, saved_params):
                param.copy_(saved)
            for state in optimizer.state.values():
                for value in state.values():
                    if torch.is_tensor(value):
                        value.copy_(saved_state[id(value)]) if id(value) in saved_state else value.zero_()
            for tensor in reset:
                tensor.zero_()

        optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            step_fn(features, labels, self.index)
            optimizer.step()

    def replay(self, index: torch.Tensor) -> None:
        self.index.copy_(index, non_blocking=True)
        self.graph.replay()
