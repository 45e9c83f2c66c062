"""Plain ``nn.Module`` detectors and the LightningModule that trains them.

Its names are imported on first use: ``models.batches`` and ``models.nets`` (what ``ids report``
and the baselines need) load without Lightning."""

from ids_lightning.core.lazy import lazy_attributes

__all__ = ["CNN", "CNNLSTM", "LSTM", "CNNBiLSTM", "IDSLitModule", "Transformer"]
__getattr__ = lazy_attributes(
    __name__, {"IDSLitModule": "module"} | {name: "nets" for name in __all__ if name != "IDSLitModule"}
)
