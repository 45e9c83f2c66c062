"""The LightningDataModule: raw files of any registered dataset to device-resident tensors."""

from ids_lightning.data.datamodule import FlowDataModule, flow_datamodule
from ids_lightning.data.options import DataOptions

__all__ = ["DataOptions", "FlowDataModule", "flow_datamodule"]
