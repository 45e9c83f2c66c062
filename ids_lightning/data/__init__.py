"""The LightningDataModule: raw files of any registered dataset to device-resident tensors."""

from ids_lightning.data.datamodule import FlowDataModule

__all__ = ["FlowDataModule"]
