"""FGSM and PGD on flow features, with the constraints real traffic imposes.

Perturbations are measured in the units of the [0, 1]-scaled features. In constrained mode
(the default) an attack may not touch categorical features (label-encoded or one-hot, known
from the preprocessing state), stays inside [0, 1], and can optionally round integer counts
(bytes, packets, ...) back to whole numbers after unscaling. Unconstrained mode is plain
L-inf FGSM/PGD, for comparison with papers.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.preprocess import Preprocessor

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Constraints:
    """Which features an attack may change and how values are kept valid.

    ``mutable`` [features] is False for categorical features; ``integer`` marks numeric
    features whose raw values are whole numbers, with ``low``/``span``/``log`` to unscale them.
    ``windowed`` inputs (``[batch, window, features + 1]``) keep their presence channel and
    their padding flows untouched.
    """

    mutable: torch.Tensor
    integer: torch.Tensor | None = None
    low: torch.Tensor | None = None
    span: torch.Tensor | None = None
    log: bool = False
    box: bool = True
    windowed: bool = False

    @classmethod
    def from_preprocessor(cls, pre: Preprocessor, round_integers: bool = False) -> Constraints:
        constraints = cls._per_flow(pre, round_integers)
        return constraints if pre.window == 1 else constraints.over_windows()

    def over_windows(self) -> Constraints:
        """The same constraints for windowed inputs: one more, immutable, channel (presence)."""

        def extend(values: torch.Tensor | None, fill) -> torch.Tensor | None:
            return None if values is None else torch.cat([values, torch.full((1,), fill, dtype=values.dtype)])

        return Constraints(
            extend(self.mutable, False),
            extend(self.integer, False),
            extend(self.low, 0.0),
            extend(self.span, 1.0),
            self.log,
            self.box,
            windowed=True,
        )

    @classmethod
    def _per_flow(cls, pre: Preprocessor, round_integers: bool) -> Constraints:
        mutable = torch.tensor([not c for c in pre.categorical_mask])
        if not round_integers:
            return cls(mutable)
        if pre.scaler == "quantile":
            raise ConfigError(
                "rounding attacked counts to whole numbers inverts the min-max scaling, which the quantile "
                "scaler does not use: attack with round_integers=false (callbacks.adversarial_eval.round_integers)"
            )
        n = pre.num_features
        integer = torch.zeros(n, dtype=torch.bool)
        integer[: len(pre.numeric_names)] = torch.tensor(pre.numeric_integer)
        low = torch.zeros(n, dtype=torch.float64)
        span = torch.ones(n, dtype=torch.float64)
        low[: len(pre.numeric_names)] = torch.tensor(pre.numeric_min, dtype=torch.float64)
        spans = torch.tensor(pre.numeric_max, dtype=torch.float64) - low[: len(pre.numeric_names)]
        span[: len(pre.numeric_names)] = torch.where(spans == 0, torch.ones_like(spans), spans)
        return cls(mutable, integer, low, span, pre.scaler == "log_minmax")

    @classmethod
    def none(cls, input_shape: tuple[int, ...]) -> Constraints:
        """Unconstrained: every feature mutable, no box, no rounding (windows: the presence
        channel and padding stay)."""
        if len(input_shape) == 1:
            return cls(torch.ones(input_shape[0], dtype=torch.bool), box=False)
        return cls(torch.ones(input_shape[-1] - 1, dtype=torch.bool), box=False).over_windows()

    def to(self, device: torch.device | str) -> Constraints:
        """The same constraints with their tensors on ``device``: moved once, not on every
        projection (a copy from the host cannot be captured in a CUDA graph)."""

        def move(values: torch.Tensor | None) -> torch.Tensor | None:
            return None if values is None else values.to(device)

        return Constraints(
            move(self.mutable), move(self.integer), move(self.low), move(self.span), self.log, self.box, self.windowed
        )

    def project(self, adversarial: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
        """Into the eps-ball around ``clean``, the valid box, and onto whole numbers where asked.

        Values the attack did not change are returned bit for bit, so eps = 0 is the clean input.
        """
        delta = (adversarial - clean).clamp(-eps, eps) * self.mutable.to(clean.device)
        if self.windowed:
            delta = delta * clean[..., -1:]  # padding flows stay zero
        out = clean + delta
        if self.box:
            out = out.clamp(0.0, 1.0)
        if self.integer is not None:
            out = self._round(out, clean)
        return torch.where(delta == 0, clean, out)

    def _round(self, x: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        low, span = self.low.to(x.device), self.span.to(x.device)
        raw = x.double() * span + low
        raw = torch.expm1(raw) if self.log else raw
        rounded = raw.clamp(min=0).round()
        rounded = torch.log1p(rounded) if self.log else rounded
        scaled = ((rounded - low) / span).to(x.dtype).clamp(0.0, 1.0)
        return torch.where(self.integer.to(x.device) & (x != clean), scaled, x)


@contextmanager
def input_gradients():
    """Gradients with respect to inputs inside Lightning's test loop: leave inference mode,
    enable grad, and use the native RNN kernels, because cuDNN refuses an RNN backward pass
    in eval mode (which keeps dropout off)."""
    with torch.inference_mode(False), torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        yield


@contextmanager
def without_dropout(net: torch.nn.Module):
    """Attacks during training: the net stays in train mode, so RNNs keep cuDNN's kernels (whose
    backward pass needs it) and a CUDA graph can capture the attack, but every dropout is off,
    so the attack sees the same function as one made in eval mode (the nets have no batch norm)."""
    saved = []
    for module in net.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            saved.append((module, "p", module.p))
            module.p = 0.0
        elif isinstance(module, torch.nn.RNNBase):
            saved.append((module, "dropout", module.dropout))
            module.dropout = 0.0
    try:
        with torch.enable_grad():
            yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _gradient(model: torch.nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # clones: tensors made under inference mode cannot take part in autograd
    x = x.detach().clone().requires_grad_(True)
    loss = loss_fn(model(x), y.clone())
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(
    model,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    constraints: Constraints,
    gradients: Callable = input_gradients,
) -> torch.Tensor:
    """One signed-gradient step of size ``eps`` (Goodfellow et al. 2015), then projected.
    ``gradients`` is the context the input gradient is taken in (a training step passes
    ``lambda: without_dropout(net)``)."""
    if eps == 0:
        return x.clone()
    with gradients():
        grad = _gradient(model, loss_fn, x, y)
    return constraints.project(x + eps * grad.sign(), x, eps).detach()


def pgd(
    model,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    constraints: Constraints,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    gradients: Callable = input_gradients,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018): ``steps`` signed steps of ``step_size``
    (default 2.5 * eps / steps), each projected; with one step, no random start and
    step_size = eps it is FGSM."""
    if eps == 0:
        return x.clone()
    step_size = 2.5 * eps / steps if step_size is None else step_size
    adversarial = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device=x.device if generator is None else generator.device)
        adversarial = constraints.project(x + (2 * noise.to(x.device) - 1) * eps, x, eps)
    with gradients():
        for _ in range(steps):
            grad = _gradient(model, loss_fn, adversarial, y)
            adversarial = constraints.project(adversarial + step_size * grad.sign(), x, eps)
    return adversarial.detach()
