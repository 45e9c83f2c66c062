"""Plain ``nn.Module`` detectors and the LightningModule that trains them."""

from ids_lightning.models.module import IDSLitModule
from ids_lightning.models.nets import CNN, CNNLSTM, LSTM, CNNBiLSTM, Transformer

__all__ = ["CNN", "CNNLSTM", "LSTM", "CNNBiLSTM", "IDSLitModule", "Transformer"]
