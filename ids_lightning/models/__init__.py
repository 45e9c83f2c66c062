"""Plain ``nn.Module`` detectors and the LightningModule that trains them.

Its names are imported on first use: ``models.batches`` and ``models.nets`` (what ``ids report``
and the baselines need) load without Lightning."""

from ids_lightning.core.lazy import lazy_attributes

__all__ = ["CNN", "CNNLSTM", "LSTM", "CNNBiLSTM", "FTTransformer", "IDSLitModule", "TabM", "Transformer"]
__getattr__ = lazy_attributes(
    __name__,
    {"IDSLitModule": "module", "TabM": "tabular", "FTTransformer": "tabular"}
    | {name: "nets" for name in ("CNN", "CNNLSTM", "LSTM", "CNNBiLSTM", "Transformer")},
)
