"""The four detectors of the seed paper and a small transformer, as plain ``nn.Module``s.

With ``window`` = 1 (the seed paper) a flow's feature vector is read as a one-channel sequence
of length ``num_features``: the convolutions slide over neighbouring features, the LSTMs step
through them; input ``[batch, num_features]``. With ``window`` > 1 the input is a host's last
flows, ``[batch, window, num_features + 1]`` (last channel: 1 for a flow, 0 for left padding;
see :mod:`ids_lightning.core.windows`), and the time axis is the window: the LSTMs run over the
flows (after a per-flow feature extractor and, in the CNN-LSTMs, a conv over time), the CNN
convolves over time. Every net returns
logits: one for two classes (binary cross-entropy, as in the seed paper), ``num_classes``
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.preprocess import MAX_EMBEDDING_DIM, Preprocessor


def output_size(num_classes: int) -> int:
    if num_classes < 2:
        raise ConfigError(f"need at least two classes, got {num_classes}")
    return 1 if num_classes == 2 else num_classes


def to_probabilities(logits: torch.Tensor, binary: bool) -> torch.Tensor:
    """``[batch, num_classes]`` class probabilities from a net's logits (one logit when binary):
    what metrics, attacks and the exported ONNX model all see."""
    if binary:
        positive = torch.sigmoid(logits.reshape(-1))
        return torch.stack([1 - positive, positive], dim=1)
    return logits.softmax(dim=-1)


def _conv_block(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    return [
        nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
        nn.ReLU(),
        nn.MaxPool1d(2),
    ]


def _head(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, output_size(num_classes)),
    )


def _check_window(window: int) -> None:
    if window < 1:
        raise ConfigError(f"window must be at least 1, got {window}")


class EmbeddedInputs(nn.Module):
    """A net behind learned embeddings of the categorical columns (``dataset.categorical=
    embedding``): the input holds each category's code (0 = unknown) after the numeric columns;
    each code becomes ``min(8, codes)`` learned numbers, and ``net`` (built for the numeric
    columns plus those) sees them in place of the code. Over a window, padding flows stay
    zero."""

    def __init__(self, net: nn.Module, num_numeric: int, sizes: list[int], window: int = 1):
        super().__init__()
        self.net, self.num_numeric, self.windowed = net, num_numeric, window > 1
        self.tables = nn.ModuleList(nn.Embedding(size, embedding_dim(size)) for size in sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, codes = self.num_numeric, len(self.tables)
        looked_up = [table(x[..., n + j].long()) for j, table in enumerate(self.tables)]
        embedded = torch.cat(looked_up, dim=-1)
        rest = x[..., n + codes :]  # the presence channel of a window, else nothing
        if self.windowed:
            embedded = embedded * rest
        return self.net(torch.cat([x[..., :n], embedded, rest], dim=-1))


def embedding_dim(codes: int) -> int:
    return min(MAX_EMBEDDING_DIM, codes)


def build_for(make_net: Callable[..., nn.Module], pre: Preprocessor, net_class: type | None = None) -> nn.Module:
    """``make_net(num_features)`` sized for the model input the preprocessing ``pre`` produces:
    under ``embedding`` encoding wrapped in :class:`EmbeddedInputs`, the net sized for what
    the embeddings make of the input; a ``net_class`` that embeds categories itself (its
    ``reads_category_codes``: the tabular nets) gets the codes and their ``categories``."""
    sizes = pre.embedding_sizes
    if not sizes:
        return make_net(pre.num_features)
    if getattr(net_class, "reads_category_codes", False):
        return make_net(pre.num_features, categories=list(sizes))
    width = len(pre.numeric_names) + sum(embedding_dim(size) for size in sizes)
    return EmbeddedInputs(make_net(width), len(pre.numeric_names), sizes, pre.window)


class WindowConv(nn.Module):
    """The conv stage of the CNN-LSTMs over a window: each flow embedded (linear + ReLU: the
    per-flow feature extractor), then a conv + ReLU over time that picks up local patterns of
    neighbouring flows (bursts, repeats); same length, so position ``t`` stays flow ``t``.

    The seed paper's conv over each flow's features would cost a window-fold of the one-flow
    model's largest activation per sample; an embedding keeps windowed training near one-flow
    speed (see docs/windows.md)."""

    def __init__(self, num_features: int, embed: int, conv_channels: int, kernel_size: int):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(num_features + 1, embed), nn.ReLU())
        self.conv = nn.Sequential(nn.Conv1d(embed, conv_channels, kernel_size, padding=kernel_size // 2), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.embed(x).transpose(1, 2)).transpose(1, 2)  # [batch, window, channels]


class CNN(nn.Module):
    """Stacked 1-D conv + ReLU + max-pool blocks, then a dense head. Over a window the convs
    run over time (same length, no pooling) and the head reads the last flow's channels and
    their maximum over the window."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        channels: tuple[int, ...] = (32, 64),
        kernel_size: int = 3,
        hidden: int = 128,
        dropout: float = 0.3,
        window: int = 1,
    ):
        super().__init__()
        _check_window(window)
        self.window = window
        if window > 1:
            layers, in_channels = [], num_features + 1
            for out_channels in channels:
                layers += [nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), nn.ReLU()]
                in_channels = out_channels
            self.features = nn.Sequential(*layers)
            self.head = _head(2 * in_channels, hidden, num_classes, dropout)
            return
        layers, in_channels, length = [], 1, num_features
        for out_channels in channels:
            layers += _conv_block(in_channels, out_channels, kernel_size)
            in_channels, length = out_channels, length // 2
        if length < 1:
            raise ConfigError(f"{len(channels)} pooling stages need more than {num_features} features")
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = _head(in_channels * length, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.window == 1:
            return self.head(self.features(x.unsqueeze(1)))
        over_time = self.features(x.transpose(1, 2))  # [batch, channels, window]
        return self.head(torch.cat([over_time[..., -1], over_time.amax(dim=-1)], dim=1))


class LSTM(nn.Module):
    """A stacked LSTM over the features (over the flows of a window, each flow's features as
    one step); the top layer's last hidden state feeds the head."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        hidden: int = 64,
        dropout: float = 0.3,
        window: int = 1,
    ):
        super().__init__()
        _check_window(window)
        self.window = window
        self.lstm = nn.LSTM(1 if window == 1 else num_features + 1, hidden_size, num_layers, batch_first=True)
        self.head = _head(hidden_size, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x.unsqueeze(-1) if self.window == 1 else x)
        return self.head(h_n[-1])


def _conv_stage(num_features: int, conv_channels: int, kernel_size: int, hidden_size: int, window: int) -> nn.Module:
    """The conv stage of the CNN-LSTMs: over a flow's features (``window`` = 1), or over the
    embedded flows of a window (:class:`WindowConv`); either hands the LSTM ``conv_channels``
    per step."""
    _check_window(window)
    if window == 1:
        return nn.Sequential(*_conv_block(1, conv_channels, kernel_size))
    return WindowConv(num_features, hidden_size, conv_channels, kernel_size)


def _sequence(conv: nn.Module, x: torch.Tensor, window: int) -> torch.Tensor:
    if window == 1:
        return conv(x.unsqueeze(1)).transpose(1, 2)  # [batch, length, channels]
    return conv(x)  # [batch, window, channels]


class CNNLSTM(nn.Module):
    """The seed paper's hybrid: conv + pool extract local patterns, a stacked LSTM reads them
    (over a window: flows embedded, a conv over time, the LSTM over the flows in order)."""

    bidirectional = False

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        conv_channels: int = 64,
        kernel_size: int = 3,
        hidden_size: int = 64,
        num_layers: int = 2,
        hidden: int = 64,
        dropout: float = 0.3,
        window: int = 1,
    ):
        super().__init__()
        self.window = window
        self.conv = _conv_stage(num_features, conv_channels, kernel_size, hidden_size, window)
        directions = 2 if self.bidirectional else 1
        self.lstm = nn.LSTM(conv_channels, hidden_size, num_layers, batch_first=True, bidirectional=self.bidirectional)
        self.head = _head(directions * hidden_size, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(_sequence(self.conv, x, self.window))
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1])


class CNNBiLSTM(CNNLSTM):
    """Conv + pool, then a bidirectional LSTM; both directions' final states feed the head
    (``conf/model/cnn_bilstm.yaml``: one layer)."""

    bidirectional = True


class Transformer(nn.Module):
    """A small pre-norm transformer encoder over the flows of a window: each flow embedded,
    plus a learnt position; attention never looks at padding; the last (current) flow's
    output feeds the head. With ``window`` = 1 it is a residual MLP over one flow."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        feedforward: int = 128,
        hidden: int = 64,
        dropout: float = 0.1,
        window: int = 1,
    ):
        super().__init__()
        _check_window(window)
        if d_model % heads:
            raise ConfigError(f"d_model ({d_model}) must be a multiple of heads ({heads})")
        self.window = window
        self.embed = nn.Linear(num_features if window == 1 else num_features + 1, d_model)
        self.position = nn.Parameter(torch.zeros(window, d_model))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, heads, feedforward, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = _head(d_model, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.window == 1:
            x, attend = x.unsqueeze(1), None
        else:  # [batch, 1, 1, window]: True where a key is a flow
            attend = (x[..., -1] > 0.5)[:, None, None, :]
        h = self.embed(x) + self.position
        for block in self.blocks:
            h = block(h, attend)
        return self.head(self.norm(h[:, -1]))


class EncoderBlock(nn.Module):
    """Pre-norm multi-head self-attention and feed-forward, each with a residual connection."""

    def __init__(self, d_model: int, heads: int, feedforward: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, feedforward), nn.GELU(), nn.Dropout(dropout), nn.Linear(feedforward, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, attend: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = h.shape
        q, k, v = self.qkv(self.norm1(h)).reshape(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
        if attend is not None:
            scores = scores.masked_fill(~attend, float("-inf"))
        mixed = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, length, width)
        h = h + self.drop(self.out(mixed))
        return h + self.drop(self.ff(self.norm2(h)))
