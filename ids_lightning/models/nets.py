"""The four detectors of the seed paper, as plain ``nn.Module``s.

A flow's feature vector is read as a one-channel sequence of length ``num_features``: the
convolutions slide over neighbouring features, the LSTMs step through them. Every net maps
``[batch, num_features]`` to logits: one logit for two classes (binary cross-entropy, as in the
seed paper), ``num_classes`` logits otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from ids_lightning.core.errors import ConfigError


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


class CNN(nn.Module):
    """Stacked 1-D conv + ReLU + max-pool blocks, then a dense head."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        channels: tuple[int, ...] = (32, 64),
        kernel_size: int = 3,
        hidden: int = 128,
        dropout: float = 0.3,
    ):
        super().__init__()
        layers, in_channels, length = [], 1, num_features
        for out_channels in channels:
            layers += _conv_block(in_channels, out_channels, kernel_size)
            in_channels, length = out_channels, length // 2
        if length < 1:
            raise ConfigError(f"{len(channels)} pooling stages need more than {num_features} features")
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = _head(in_channels * length, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)))


class LSTM(nn.Module):
    """A stacked LSTM over the features; the top layer's last hidden state feeds the head."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        hidden: int = 64,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden_size, num_layers, batch_first=True)
        self.head = _head(hidden_size, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x.unsqueeze(-1))
        return self.head(h_n[-1])


class CNNLSTM(nn.Module):
    """The seed paper's hybrid: conv + pool extract local patterns, a stacked LSTM reads them."""

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
    ):
        super().__init__()
        self.conv = nn.Sequential(*_conv_block(1, conv_channels, kernel_size))
        self.lstm = nn.LSTM(conv_channels, hidden_size, num_layers, batch_first=True)
        self.head = _head(hidden_size, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = self.conv(x.unsqueeze(1)).transpose(1, 2)  # [batch, length, channels]
        _, (h_n, _) = self.lstm(sequence)
        return self.head(h_n[-1])


class CNNBiLSTM(nn.Module):
    """Conv + pool, then a bidirectional LSTM; both directions' final states feed the head."""

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        conv_channels: int = 64,
        kernel_size: int = 3,
        hidden_size: int = 64,
        num_layers: int = 1,
        hidden: int = 64,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.conv = nn.Sequential(*_conv_block(1, conv_channels, kernel_size))
        self.lstm = nn.LSTM(conv_channels, hidden_size, num_layers, batch_first=True, bidirectional=True)
        self.head = _head(2 * hidden_size, hidden, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = self.conv(x.unsqueeze(1)).transpose(1, 2)
        _, (h_n, _) = self.lstm(sequence)
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=1))
