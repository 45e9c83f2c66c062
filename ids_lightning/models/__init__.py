"""Plain ``nn.Module`` detectors and the LightningModule that trains them."""

from ids_lightning.models.module import IDSLitModule
from ids_lightning.models.nets import CNN, LSTM, CNNBiLSTM, CNNLSTM

__all__ = ["CNN", "CNNBiLSTM", "CNNLSTM", "IDSLitModule", "LSTM"]
