"""The LightningDataModule: raw files of any registered dataset to device-resident tensors.

Its names are imported on first use, so that ``ids prepare`` (``data.prepare``) starts without
importing Lightning and torch."""

from ids_lightning.core.lazy import lazy_attributes

__all__ = ["DataOptions", "FlowDataModule", "flow_datamodule"]
__getattr__ = lazy_attributes(
    __name__, {"DataOptions": "options", "FlowDataModule": "datamodule", "flow_datamodule": "datamodule"}
)
