"""At fit end, export the best checkpoint's net to ONNX with :func:`ids_lightning.deploy.export_run`."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import lightning as L

from ids_lightning.deploy import ProbabilityHead, export_run, load_net_weights

log = logging.getLogger(__name__)


class OnnxExport(L.Callback):
    """Export, verify and quantise the best checkpoint's net at fit end."""

    def __init__(
        self,
        output_dir: str,
        verify_rows: int = 4096,
        calibration_rows: int = 1024,
        bench_rows: int = 4096,
        quantize: bool = True,
    ):
        self.output_dir = Path(output_dir)
        self.options = {
            "verify_rows": verify_rows,
            "calibration_rows": calibration_rows,
            "bench_rows": bench_rows,
            "quantize": quantize,
        }
        self.summary: dict = {}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after a distributed fit, rank 0 exports when it completes the run in one process
        if not trainer.is_global_zero or trainer.datamodule is None or trainer.world_size > 1:
            return
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        self.export(pl_module, trainer.datamodule, best)

    def export(self, pl_module: L.LightningModule, datamodule: L.LightningDataModule, best: str) -> dict:
        """Export ``pl_module``'s net with the weights of checkpoint ``best`` (its own if empty);
        also called directly when a re-run completes a run whose fit had finished."""
        net = copy.deepcopy(pl_module.net).cpu()
        if best:
            load_net_weights(net, Path(best))
        else:
            log.warning("no best checkpoint: exporting the final weights")
        tensors = {stage: (x.cpu(), y.cpu()) for stage, (x, y) in datamodule.tensors.items()}
        self.summary = export_run(
            ProbabilityHead(net.eval(), pl_module.binary).eval(),
            tensors,
            self.output_dir,
            pl_module.class_names,
            **self.options,
        )
        return self.summary
