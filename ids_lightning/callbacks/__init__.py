"""Lightning callbacks of the project."""

from ids_lightning.callbacks.adversarial import AdversarialEval
from ids_lightning.callbacks.export import OnnxExport
from ids_lightning.callbacks.report import RunReport

__all__ = ["AdversarialEval", "OnnxExport", "RunReport"]
