"""Lightning callbacks of the project (each configured in ``conf/callbacks/<name>.yaml``)."""

from ids_lightning.callbacks.checkpoint import AtomicCheckpointIO, RunCheckpoint
from ids_lightning.callbacks.novelty import NoveltyCalibration
from ids_lightning.callbacks.onnx_export import OnnxExport
from ids_lightning.callbacks.progress import StepProgress
from ids_lightning.callbacks.robustness import AdversarialEval
from ids_lightning.callbacks.run_report import RunReport
from ids_lightning.callbacks.unseen_types import UnseenAttackTypes

__all__ = [
    "AdversarialEval",
    "AtomicCheckpointIO",
    "NoveltyCalibration",
    "OnnxExport",
    "RunCheckpoint",
    "RunReport",
    "StepProgress",
    "UnseenAttackTypes",
]
