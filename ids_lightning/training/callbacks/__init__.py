"""Lightning callbacks of the project (each configured in ``ids_lightning/conf/callbacks/<name>.yaml``)."""

from ids_lightning.training.callbacks.checkpoint import AtomicCheckpointIO, RunCheckpoint
from ids_lightning.training.callbacks.explanations import Explanations
from ids_lightning.training.callbacks.novelty import NoveltyCalibration
from ids_lightning.training.callbacks.progress import StepProgress
from ids_lightning.training.callbacks.robustness import AdversarialEval
from ids_lightning.training.callbacks.run_report import RunReport
from ids_lightning.training.callbacks.unseen_types import UnseenAttackTypes

__all__ = [
    "AdversarialEval",
    "AtomicCheckpointIO",
    "Explanations",
    "NoveltyCalibration",
    "RunCheckpoint",
    "RunReport",
    "StepProgress",
    "UnseenAttackTypes",
]
