"""LightningDataModules: raw files to device-resident tensors."""

from ids_lightning.data.base import InMemoryBatches, TabularDataModule
from ids_lightning.data.nsl_kdd import NSLKDDDataModule

__all__ = ["InMemoryBatches", "NSLKDDDataModule", "TabularDataModule"]
