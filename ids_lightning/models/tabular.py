"""Modern tabular nets for one flow's features: TabM and FT-Transformer (Gorishniy et al.).

Both embed each numeric feature with piecewise-linear embeddings (``rtdl-num-embeddings``,
version "B") and each categorical column on its own, and read one flow (``dataset.window=1``).

The bins live in the scaled space: every preprocessed numeric column lies in [0, 1] (min-max
saturates), so the edges are ``bins`` equal steps of [0, 1] for every feature. Under
``dataset.scaler=quantile`` (each column mapped piecewise-linearly onto its training quantiles)
those are the paper's quantile bins; under ``log_minmax`` they are equal steps of the log range.
Fixed edges keep the net a function of its config alone, so a run folder rebuilds it without
its training rows.

Categorical columns: under ``dataset.categorical=embedding`` the input carries each column's
code (0 = unknown) after the numeric columns, and these nets take the codes themselves
(``reads_category_codes``): TabM one-hot encodes them (as the ``tabm`` package does), the
FT-Transformer looks each up as a token. Under ``label`` or ``onehot`` encoding every column is
numeric to them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ids_lightning.core.errors import ConfigError
from ids_lightning.models.nets import EncoderBlock, output_size


def _one_flow(model: str, window: int) -> None:
    if window != 1:
        raise ConfigError(f"model={model} reads one flow's features: set dataset.window=1 (got {window})")


def _numeric_embeddings(count: int, bins: int, width: int) -> nn.Module:
    """Piecewise-linear embeddings of ``count`` numeric features in [0, 1], ``bins`` equal bins each."""
    from rtdl_num_embeddings import PiecewiseLinearEmbeddings

    if bins < 2:
        raise ConfigError(f"model.net.bins must be at least 2, not {bins}")
    edges = [torch.linspace(0.0, 1.0, bins + 1) for _ in range(count)]
    return PiecewiseLinearEmbeddings(edges, width, activation=False, version="B")


def _split(num_features: int, categories: list[int] | None) -> tuple[int, list[int]]:
    categories = [int(size) for size in categories or []]
    numeric = num_features - len(categories)
    if numeric < 1:
        raise ConfigError(f"{num_features} input columns leave no numeric feature beside {len(categories)} categorical")
    return numeric, categories


def mean_of_members(member_logits: torch.Tensor, binary: bool) -> torch.Tensor:
    """Logits whose probabilities are the mean of the members' probabilities (``[batch, k,
    out]`` in): TabM's prediction, computed in log space so that no probability of 0 or 1
    becomes an infinite logit."""
    log_k = math.log(member_logits.shape[1])
    if binary:
        z = member_logits.squeeze(-1)
        log_positive = torch.logsumexp(nn.functional.logsigmoid(z), dim=1) - log_k
        log_negative = torch.logsumexp(nn.functional.logsigmoid(-z), dim=1) - log_k
        return (log_positive - log_negative).unsqueeze(-1)
    return torch.logsumexp(member_logits.log_softmax(dim=-1), dim=1) - log_k


def member_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[batch, members, out]``: each ensemble member's logits (one member for a plain net),
    which training scores one by one: TabM's members learn as separate models."""
    members = getattr(net, "member_logits", None)
    return members(x) if members is not None else net(x).unsqueeze(1)


class TabM(nn.Module):
    """TabM (Gorishniy et al., ICLR 2025) from the ``tabm`` package: ``k`` MLPs that share most
    weights (BatchEnsemble adapters), all run in one pass. Each member is trained with its own
    loss (the module scores :meth:`member_logits`); the model's prediction is the mean of the
    members' probabilities (:meth:`forward`), and their spread is an uncertainty score."""

    reads_category_codes = True

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        k: int = 32,
        blocks: int = 2,
        width: int = 512,
        dropout: float = 0.1,
        bins: int = 16,
        embedding: int = 16,
        window: int = 1,
        categories: list[int] | None = None,
    ):
        super().__init__()
        import tabm

        _one_flow("tabm", window)
        self.numeric, self.categories = _split(num_features, categories)
        self.binary = num_classes == 2
        self.tabm = tabm.TabM.make(
            n_num_features=self.numeric,
            cat_cardinalities=self.categories or None,
            d_out=output_size(num_classes),
            num_embeddings=_numeric_embeddings(self.numeric, bins, embedding),
            k=k,
            n_blocks=blocks,
            d_block=width,
            dropout=dropout,
        )

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The package's ``TabM.forward`` for one batch shared by all members, its input
        assembled with ``torch.cat``: ONNX has no ``column_stack``."""
        parts = [self.tabm.num_module(x[:, : self.numeric]).flatten(1)]
        if self.categories:
            parts.append(self.tabm.cat_module(x[:, self.numeric :].long()).to(x.dtype))
        return self.tabm.output(self.tabm.backbone(self.tabm.ensemble_view(torch.cat(parts, dim=1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mean_of_members(self.member_logits(x), self.binary)


class FTTransformer(nn.Module):
    """FT-Transformer (Gorishniy et al., NeurIPS 2021): every feature becomes a token (numeric
    ones through piecewise-linear embeddings, categorical ones through a lookup), a [CLS] token
    is appended, pre-norm transformer blocks (the project's :class:`EncoderBlock`) mix them, and
    the [CLS] output feeds the head (LayerNorm, ReLU, linear)."""

    reads_category_codes = True

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        d_token: int = 64,
        heads: int = 8,
        layers: int = 2,
        feedforward_factor: float = 4 / 3,
        dropout: float = 0.1,
        bins: int = 16,
        window: int = 1,
        categories: list[int] | None = None,
    ):
        super().__init__()
        _one_flow("ft_transformer", window)
        if d_token % heads:
            raise ConfigError(f"d_token ({d_token}) must be a multiple of heads ({heads})")
        self.numeric, self.categories = _split(num_features, categories)
        self.tokens = _numeric_embeddings(self.numeric, bins, d_token)
        self.lookups = nn.ModuleList(nn.Embedding(size, d_token) for size in self.categories)
        self.cls = nn.Parameter(torch.empty(1, 1, d_token))
        nn.init.normal_(self.cls, std=d_token**-0.5)
        feedforward = max(1, round(feedforward_factor * d_token))
        self.blocks = nn.ModuleList(EncoderBlock(d_token, heads, feedforward, dropout) for _ in range(layers))
        self.head = nn.Sequential(nn.LayerNorm(d_token), nn.ReLU(), nn.Linear(d_token, output_size(num_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = [self.tokens(x[:, : self.numeric])]
        tokens += [lookup(x[:, self.numeric + j].long()).unsqueeze(1) for j, lookup in enumerate(self.lookups)]
        h = torch.cat([*tokens, self.cls.expand(x.shape[0], -1, -1)], dim=1)  # not len(x): a traced constant
        for block in self.blocks:
            h = block(h, None)
        return self.head(h[:, -1])
