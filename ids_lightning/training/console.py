"""What a run says on the console (and in ``train.log``): the project's own lines, and none of the
third-party chatter that says nothing about the run (silenced at its source, by message)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

# (logger name, text in the message) of known lines that carry no information about the run
CHATTER = (
    ("lightning.pytorch.utilities.rank_zero", "litlogger"),  # an advert, on every run
    ("root", "pre-processing before quantization"),  # onnxruntime's quantizer, per model
    ("root", "Quantization parameters for tensor"),
)


class _Drop(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet() -> None:
    """Silence the known chatter (idempotent): scoped to its logger and message, so every other
    warning still shows."""
    for name, text in CHATTER:
        logger = logging.getLogger(None if name == "root" else name)
        if not any(isinstance(f, _Drop) and f.text == text for f in logger.filters):
            logger.addFilter(_Drop(text))
    # Lightning's own code calls a deprecated torch API on every step; nothing for a user to do
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # under DDP: the module logs epoch values its metrics (and train_scores) already summed over ranks
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\(.*sync_dist=True\)`")


def run_summary(metrics: dict, output_dir: Path) -> str:
    """The end of a run in a few lines: best epoch, test figures, recall per class, files, next."""
    lines = [f"run finished: {output_dir}"]
    if metrics.get("best_epoch") is not None:
        how = "the last: a refit on the validation rows too" if metrics.get("refit") else "by validation macro-F1"
        lines.append(f"  best epoch {metrics['best_epoch'] + 1} of {metrics['epochs_run']} ({how})")
    if "test/acc" in metrics:
        lines.append(
            f"  test accuracy {metrics['test/acc']:.3f}, macro-F1 {metrics['test/f1_macro']:.3f}, "
            f"ROC-AUC {metrics['test/auroc']:.3f}"
        )
        recalls = [f"{name} {metrics[f'test/recall/{name}']:.3f}" for name in metrics["class_names"]
                   if metrics.get(f"test/recall/{name}") is not None]  # fmt: skip
        lines.append("  test recall per class: " + ", ".join(recalls))
    shown = ("metrics.json", "curves.png", "confusion_matrix.png", "roc.png", "precision_recall.png", "model.onnx")
    files = [name for name in (*shown, "train.log") if (output_dir / name).is_file()]
    lines.append("  files: " + ", ".join(files))
    if (output_dir / "model.onnx").is_file():
        lines.append(f"  next: ids detect --run {output_dir} --input <flows> --output alerts.jsonl")
        lines.append(f"        ids edge-bench {output_dir}")
    return "\n".join(lines)
