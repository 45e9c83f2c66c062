"""Several seeds of one model trained together: one process, one pass over the data per epoch,
one optimizer step and (on a GPU) one CUDA graph replay for all of them.

Member ``k`` is the :class:`IDSLitModule` that a run with seed ``k`` would build. Members share
the data tensors and nothing else: each gathers its own row order (the chunk's indices are
``[members, batch]``), has its own parameters, Adam state (one optimizer, one parameter group
per member: Adam's update is per parameter), validation metrics, best checkpoint and early
stopping, and on the CPU draws dropout masks and PGD starts from its own random state. So member
``k`` computes what the separate run with seed ``k`` computes (on one split; tested to float
tolerance). On a GPU each member's step runs on its own CUDA stream: captured in one graph the
members become parallel branches, and their small kernels run side by side.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch import nn

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.models.batches import StepChunk
from ids_lightning.models.cuda_graph import ChunkedTraining
from ids_lightning.models.module import IDSLitModule, history_row, optimizers_for

log = logging.getLogger(__name__)
FIT_RECORD = "fit.json"


class ReplicaLitModule(ChunkedTraining):
    """Trains ``members`` (seeds ``seeds``) side by side; member ``k`` keeps its best weights as
    a checkpoint of a plain :class:`IDSLitModule` in ``folders[k]/checkpoints`` (chosen like
    ``selection[k]``, a ``ModelCheckpoint``, would) and stops like ``stopping[k]`` (an
    ``EarlyStopping`` or None) would; the fit ends when every member has stopped. At the end
    each folder gets the ``fit.json`` of a finished fit, from which the member's run is tested,
    exported and reported like any other (see ``ids_lightning.training.run``).

    ``rng_states`` are the CPU generator states right after each member was built.
    """

    def __init__(
        self,
        members: list[IDSLitModule],
        seeds: list[int],
        folders: list[Path],
        selection: list[ModelCheckpoint],
        stopping: list[EarlyStopping | None],
        rng_states: list[torch.Tensor],
    ):
        super().__init__()
        first = members[0]
        scheduler = getattr(first.scheduler_factory, "func", first.scheduler_factory)  # a partial's class
        if isinstance(scheduler, type) and issubclass(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise ConfigError("seeds=[...] trains one optimizer for every seed: ReduceLROnPlateau would need one each")
        self.members = nn.ModuleList(members)
        self.seeds, self.folders = list(seeds), [Path(f) for f in folders]
        self.selection, self.stopping = selection, stopping
        self.optimizer_factory, self.scheduler_factory = first.optimizer_factory, first.scheduler_factory
        self.cuda_graph, self.graph_steps = first.cuda_graph, first.graph_steps
        self.automatic_optimization = False
        self._rng = [state.clone() for state in rng_states]
        self._reset_graphs()
        self.stopped: set[int] = set()  # members whose fit has ended
        self._stopping: set[int] = set()  # members that stop after this epoch
        self.best: list[dict] = [{"score": None, "path": ""} for _ in members]
        self.logged: list[dict[str, float]] = [{} for _ in members]
        self._val_loss: list[list[torch.Tensor]] = [[] for _ in members]  # per batch: loss x rows
        self._val_rows = [0 for _ in members]
        self._improved: set[int] = set()
        self._streams: list = []
        self._started = time.perf_counter()

    @property
    def active(self) -> list[int]:
        return [k for k in range(len(self.members)) if k not in self.stopped]

    # --- training ------------------------------------------------------------------------------
    def _train_math(self, features: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> None:
        if self._use_graph:  # one stream per member, joined before the optimizer step
            main = torch.cuda.current_stream()
            if not self._streams:
                self._streams = [torch.cuda.Stream() for _ in self.members]
            for k in self.active:
                self._streams[k].wait_stream(main)
                with torch.cuda.stream(self._streams[k]):
                    self.members[k].step_math(features, labels, index[k], self.manual_backward)
            for k in self.active:
                main.wait_stream(self._streams[k])
            return
        for k in self.active:
            with self._own_random_state(k):
                self.members[k].step_math(features, labels, index[k], self.manual_backward)

    @contextmanager
    def _own_random_state(self, k: int) -> Iterator[None]:
        """On the CPU, member ``k`` draws (dropout, PGD starts) from its own generator state, so
        it draws what a separate run would; on a GPU the members share the device's stream."""
        if self.device.type != "cpu":
            yield
            return
        outer = torch.get_rng_state()
        torch.set_rng_state(self._rng[k])
        try:
            yield
        finally:
            self._rng[k] = torch.get_rng_state()
            torch.set_rng_state(outer)

    def _running_statistics(self) -> list[torch.Tensor]:
        return [t for member in self.members for t in member._running_statistics()]

    def training_step(self, batch: StepChunk, batch_idx: int) -> None:
        if not isinstance(batch, StepChunk) or batch.index[0].dim() != 2:
            raise TypeError("several seeds train from chunks of [seeds, batch] indices (InMemoryBatches(seed=[...]))")
        self._run_chunk(batch)

    def on_fit_start(self) -> None:
        self._reset_graphs()
        self._started = time.perf_counter()
        for member in self.members:
            member.prepare_attacks(getattr(self.trainer, "datamodule", None))
            if self.trainer.ckpt_path is None:  # a resumed fit keeps the best of its checkpoint's epochs
                member.val_f1_best.reset()

    def on_train_epoch_start(self) -> None:
        for member in self.members:
            member.on_train_epoch_start()
        self._epoch_started = time.perf_counter()

    def configure_optimizers(self):
        groups = [{"params": list(member.parameters())} for member in self.members]
        return optimizers_for(self, groups)

    # --- validation and selection ----------------------------------------------------------------
    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        for k in self.active:
            member = self.members[k]
            logits = member(x)
            member.val_metrics.update(member.probabilities(logits), y)
            self._val_loss[k].append(member.loss(logits, y).detach() * len(y))
            self._val_rows[k] += len(y)

    def on_validation_epoch_end(self) -> None:
        scores = []
        for k in self.active:
            member = self.members[k]
            values = {key: float(v) for key, v in member.val_metrics.compute().items()}
            member.val_metrics.reset()
            values["val/loss"] = float(sum(self._val_loss[k])) / max(self._val_rows[k], 1)
            self._val_loss[k], self._val_rows[k] = [], 0
            if self.trainer.sanity_checking:
                continue
            member.val_f1_best.update(torch.tensor(values["val/f1_macro"]))
            values["val/f1_macro_best"] = float(member.val_f1_best.compute())
            self.logged[k].update(values)
            member._last_val_epoch = self.current_epoch
            self._select(k, values)
            scores.append(values["val/f1_macro"])
        if scores:  # the progress bar's figure: the members' mean
            self.log("val/f1_macro", sum(scores) / len(scores))

    def _select(self, k: int, values: dict[str, float]) -> None:
        """Member ``k``'s checkpoint and early-stopping decisions, as its own callbacks would make
        them for this epoch."""
        selection = self.selection[k]
        current = values.get(selection.monitor)
        if current is None:
            raise ConfigError(f"callbacks.model_checkpoint.monitor {selection.monitor!r} is not a validation metric")
        best = self.best[k]["score"]
        if best is None or (current > best if selection.mode == "max" else current < best):
            self._save_best(k, current)
        stopper = self.stopping[k]
        if stopper is not None:
            should_stop, _ = stopper._evaluate_stopping_criteria(torch.tensor(values[stopper.monitor]))
            if should_stop:
                self._stopping.add(k)

    def _save_best(self, k: int, score: float | None) -> None:
        selection, member = self.selection[k], self.members[k]
        path = Path(selection.format_checkpoint_name({"epoch": self.current_epoch, "step": self.global_step}))
        checkpoint = {
            "state_dict": {key: value.detach().cpu().clone() for key, value in member.state_dict().items()},
            "hyper_parameters": dict(member.hparams),
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "pytorch-lightning_version": L.__version__,
        }
        self.trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)
        previous = self.best[k]["path"]
        if previous and previous != str(path):
            Path(previous).unlink(missing_ok=True)
        self.best[k] = {"score": score, "path": str(path)}
        self._improved.add(k)

    def on_train_epoch_end(self) -> None:
        lines = []
        for k in self.active:
            member = self.members[k]
            self.logged[k].update({key: float(value) for key, value in member.train_scores().items()})
            self.logged[k]["train/lr"] = float(self.optimizers().param_groups[k]["lr"])  # member k: group k
            validated = member._last_val_epoch == self.current_epoch
            row = history_row(self.current_epoch, self.logged[k], validated)
            member.history.append(row)
            lines.append(f"seed {self.seeds[k]} {_shown(row.get('val/f1_macro'))}{'*' if k in self._improved else ''}")
        self._improved = set()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        if self._stopping:
            self.stopped |= self._stopping
            for k in sorted(self._stopping):
                log.info("seed %d stops early after epoch %d", self.seeds[k], self.current_epoch + 1)
            self._stopping = set()
            self._reset_graphs()  # the stopped members leave the step
        if not self.active:
            self.trainer.should_stop = True
        if not self.trainer.sanity_checking and self.trainer.is_global_zero:
            seconds = time.perf_counter() - getattr(self, "_epoch_started", time.perf_counter())
            log.info(
                "epoch %3d/%s  val macro-F1 %s  %5.1f s (* new best)",
                self.current_epoch + 1,
                self.trainer.max_epochs,
                "  ".join(lines),
                seconds,
            )

    def on_fit_end(self) -> None:
        """Each member's ``fit.json``: what the ``FitRecord`` of a separate run would write. A
        member that never validated (no validation batches) keeps its last weights, which a
        separate run would test."""
        seconds = round(time.perf_counter() - self._started, 3)
        for k, member in enumerate(self.members):
            folder = self.folders[k]
            if not self.best[k]["path"]:
                self._save_best(k, None)
            best = self.best[k]["path"]
            record = {
                "metrics": dict(sorted(self.logged[k].items())),
                "epochs_run": len(member.history),
                "fit_seconds": seconds,
                "best_checkpoint": str(Path(best).relative_to(folder)) if best else "",
                "history": member.history,
                "batched_seeds": self.seeds,
            }
            if self.trainer.is_global_zero:
                atomic_write_json(folder / FIT_RECORD, record)

    # --- resuming --------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["replicas"] = {
            "history": [member.history for member in self.members],
            "logged": self.logged,
            "best": self.best,
            "stopped": sorted(self.stopped),
            "stopping": [None if s is None else s.state_dict() for s in self.stopping],
            "rng": self._rng,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("replicas")
        if saved is None:
            return
        for member, history in zip(self.members, saved["history"]):
            member.history = list(history)
        self.logged, self.best, self.stopped = saved["logged"], saved["best"], set(saved["stopped"])
        for stopper, state in zip(self.stopping, saved["stopping"]):
            if stopper is not None and state is not None:
                stopper.load_state_dict(state)
        self._rng = list(saved["rng"])


def _shown(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
