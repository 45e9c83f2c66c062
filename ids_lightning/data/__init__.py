"""LightningDataModules: raw files to device-resident tensors."""

from ids_lightning.data.base import InMemoryBatches, StepChunk, TabularDataModule
from ids_lightning.data.bot_iot import BotIoTDataModule
from ids_lightning.data.iot23 import IoT23DataModule
from ids_lightning.data.nsl_kdd import NSLKDDDataModule

__all__ = [
    "BotIoTDataModule",
    "InMemoryBatches",
    "IoT23DataModule",
    "NSLKDDDataModule",
    "StepChunk",
    "TabularDataModule",
]
