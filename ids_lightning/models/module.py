"""One LightningModule for every net: loss, metrics, optimizer and the test-time report."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassROC
from torchmetrics.functional.classification import multiclass_precision_recall_curve
from torchmetrics.utilities import dim_zero_cat

from ids_lightning.core.errors import ConfigError
from ids_lightning.models.attacks import Constraints, fgsm, pgd, without_dropout
from ids_lightning.models.batches import StepChunk
from ids_lightning.models.cuda_graph import ChunkedTraining
from ids_lightning.models.metrics import average_precision, classification_metrics, macro_scores, per_class_scores
from ids_lightning.models.nets import to_probabilities
from ids_lightning.models.tabular import mean_of_members, member_logits

log = logging.getLogger(__name__)
ROC_POINTS = 200  # enough for a smooth curve; keeps metrics and plots small
LOSSES = ("cross_entropy", "focal")
HISTORY_KEYS = ("train/loss", "train/acc", "train/lr", "val/loss", "val/acc", "val/f1_macro")


def history_row(epoch: int, values, validated: bool) -> dict[str, float | None]:
    """One epoch of the history: its training numbers, and its validation numbers when
    validation ran in that epoch."""
    row: dict[str, float | None] = {"epoch": epoch}
    for key in HISTORY_KEYS:
        fresh = key.startswith("train/") or validated
        row[key] = float(values[key]) if fresh and key in values else None
    return row


def best_epoch(history: list[dict]) -> int | None:
    """The epoch (from 0) of the best validation macro-F1, the earliest on a tie: the checkpoint
    that is tested."""
    scored = [(row["val/f1_macro"], -row["epoch"]) for row in history if row.get("val/f1_macro") is not None]
    return -max(scored)[1] if scored else None


class IDSLitModule(ChunkedTraining):
    """Trains a plain net on flow features.

    Two classes use one logit and binary cross-entropy, more classes softmax and cross-entropy;
    metrics always see ``[batch, num_classes]`` probabilities, so one metric set serves both.
    ``optimizer`` (and ``scheduler``) are partials from the config, bound to the parameters here.

    Training runs several optimizer steps per Lightning batch (a :class:`StepChunk`) under
    manual optimization, and keeps its epoch statistics (loss sum, confusion matrix) on the
    device, so a step never waits for the host. With ``cuda_graph`` full-size steps are replays
    of captured CUDA graphs, ``graph_steps`` steps per replay (see
    :mod:`ids_lightning.models.cuda_graph`), adversarial training included.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        class_names: list[str],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        monitor: str = "val/f1_macro",
        cuda_graph: bool = False,
        graph_steps: int = 8,
        class_weights: list[float] | None = None,
        adversarial: dict | None = None,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        focal_gamma: float = 2.0,
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"model.loss must be one of {LOSSES}, not {loss!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"model.label_smoothing must lie in [0, 1), not {label_smoothing}")
        if loss == "focal" and label_smoothing:
            raise ConfigError("model.loss=focal takes hard labels: set model.label_smoothing=0")
        self.loss_name, self.label_smoothing, self.focal_gamma = loss, float(label_smoothing), float(focal_gamma)
        self.adversarial = {"method": "none", "eps": 0.1, "ratio": 0.5, "steps": 3, **(adversarial or {})}
        if self.adversarial["method"] not in ("none", "fgsm", "pgd"):
            raise ConfigError(f"model.adversarial.method must be none, fgsm or pgd, not {self.adversarial['method']!r}")
        if graph_steps < 1:
            raise ConfigError(f"model.graph_steps must be at least 1, not {graph_steps}")
        self._attack_constraints: Constraints | None = None
        self.automatic_optimization = False
        self.cuda_graph, self.graph_steps = cuda_graph, int(graph_steps)
        self._reset_graphs()
        self.class_names = [str(name) for name in class_names]
        # Plain values only: checkpoints must load with torch.load(weights_only=True).
        self.save_hyperparameters({"class_names": self.class_names, "monitor": monitor}, logger=False)
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.num_classes = len(self.class_names)
        self.binary = self.num_classes == 2
        metrics = classification_metrics(self.num_classes)
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_f1_best = MaxMetric()
        self.val_f1_best.persistent(True)  # part of checkpoints, so a resumed run keeps its best
        self.test_confusion = MulticlassConfusionMatrix(self.num_classes)
        self.test_roc = MulticlassROC(self.num_classes)  # its stored rows also give the precision-recall curves
        self.test_report: dict = {}
        self.history: list[dict[str, float | None]] = []
        self._last_val_epoch = -1
        # Training statistics of the running epoch, accumulated on the device.
        confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        self.register_buffer("_train_confusion", confusion, persistent=False)
        self.register_buffer("_train_loss_sum", torch.zeros((), dtype=torch.float64), persistent=False)
        weights = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)
        self._proximal: tuple[float, list[torch.Tensor]] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return to_probabilities(logits, self.binary)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (with ``label_smoothing``), or focal loss (Lin et al. 2017: each
        row's cross-entropy times ``(1 - p_true) ** focal_gamma``, so rows the model already gets
        right weigh less); with class weights, the weighted mean (divided by the summed weights)."""
        if self.binary:
            target = y.float() * (1 - self.label_smoothing) + self.label_smoothing / 2
            per_row = F.binary_cross_entropy_with_logits(logits.squeeze(-1), target, reduction="none")
        else:
            per_row = F.cross_entropy(logits, y, reduction="none", label_smoothing=self.label_smoothing)
        if self.loss_name == "focal":  # hard labels: the row's loss is -log p_true
            per_row = (1 - torch.exp(-per_row)).pow(self.focal_gamma) * per_row
        if self.class_weights is None:
            return per_row.mean()
        weight = self.class_weights[y]
        return (weight * per_row).sum() / weight.sum()

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        probs = self.probabilities(logits)
        getattr(self, f"{stage}_metrics").update(probs, y)
        self.log(f"{stage}/loss", self.loss(logits, y), on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
        return probs

    # --- training ------------------------------------------------------------------------------
    def _train_math(self, features: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> None:
        """One step's gather, forward, loss, backward and statistics; no host synchronisation,
        so that it can also be captured in a CUDA graph."""
        self.step_math(features, labels, index, self.manual_backward)

    def step_math(self, features: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, backward) -> None:
        """:meth:`_train_math` with the backward call given (a module training several seeds
        at once drives its members' steps with its own)."""
        x, y = features[index], labels[index]
        if self.adversarial["method"] != "none":
            x = self._with_adversarial_rows(x, y)
        members = member_logits(self.net, x)  # [batch, members, out]: one member but for TabM
        loss = self.loss(members.flatten(0, 1), y.repeat_interleave(members.shape[1]))
        backward(loss if self._proximal is None else loss + self._proximal_term())
        with torch.no_grad():
            logits = members[:, 0] if members.shape[1] == 1 else mean_of_members(members, self.binary)
            predicted = (logits.squeeze(-1) > 0).long() if self.binary else logits.argmax(dim=-1)
            self._train_loss_sum.add_(loss.detach() * y.shape[0])
            cells = y * self.num_classes + predicted
            self._train_confusion.view(-1).scatter_add_(0, cells, torch.ones_like(cells))

    def _running_statistics(self) -> list[torch.Tensor]:
        return [self._train_confusion, self._train_loss_sum]

    def anchor(self, mu: float) -> None:
        """FedProx (Li et al. 2020): from now on training minimises the loss plus
        ``mu / 2 * ||w - w_anchor||^2``, with ``w_anchor`` the net's weights now (the round's
        global model), so that a site's local epochs cannot drift far from it. ``mu = 0`` removes it."""
        self._proximal = (float(mu), [p.detach().clone() for p in self.net.parameters()]) if mu else None

    def _proximal_term(self) -> torch.Tensor:
        mu, anchors = self._proximal
        return mu / 2 * sum((p - a).pow(2).sum() for p, a in zip(self.net.parameters(), anchors))

    def _with_adversarial_rows(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial training: the first ``ratio`` of the batch replaced by FGSM/PGD examples
        made against the current weights (parameter gradients are not touched), with dropout
        off and the net in train mode (see :func:`without_dropout`): what an eval-mode attack
        computes, on cuDNN's RNN kernels and inside the CUDA graph."""
        count = round(self.adversarial["ratio"] * len(y))
        if count == 0:
            return x
        if self._attack_constraints is None:
            self._attack_constraints = Constraints.none(tuple(x.shape[1:])).to(x.device)
        eps, constraints = self.adversarial["eps"], self._attack_constraints
        args = (self.net, self.loss, x[:count], y[:count], eps, constraints)
        gradients = lambda: without_dropout(self.net)  # noqa: E731
        if self.adversarial["method"] == "fgsm":
            attacked = fgsm(*args, gradients=gradients)
        else:
            attacked = pgd(*args, steps=self.adversarial["steps"], gradients=gradients)
        return torch.cat([attacked, x[count:]])

    def prepare_attacks(self, datamodule) -> None:
        """Adversarial examples for training obey the same constraints as the evaluation, with
        the constraint tensors on the training device once."""
        if self.adversarial["method"] != "none" and getattr(datamodule, "preprocessor", None) is not None:
            self._attack_constraints = Constraints.from_preprocessor(datamodule.preprocessor).to(self.device)
        elif self._attack_constraints is not None:
            self._attack_constraints = self._attack_constraints.to(self.device)

    def training_step(self, batch: StepChunk | tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        if not isinstance(batch, StepChunk):  # a plain (x, y) batch from a user's own loader
            x, y = batch
            batch = StepChunk(x, y, [torch.arange(len(y), device=y.device)])
        self._run_chunk(batch)

    def on_fit_start(self) -> None:
        self._reset_graphs()  # a fit has optimizers of its own (a federated site fits once per round)
        if self.trainer.ckpt_path is None:  # a resumed fit keeps the best of its checkpoint's epochs
            self.val_f1_best.reset()
        self.prepare_attacks(getattr(self.trainer, "datamodule", None))
        if self.cuda_graph and self.device.type != "cuda":
            rank_zero_warn("model.cuda_graph=true needs a CUDA device; training eagerly on " + str(self.device))

    def on_train_epoch_start(self) -> None:
        self._train_confusion.zero_()
        self._train_loss_sum.zero_()
        self._epoch_started = time.perf_counter()

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        probs = self._eval_step(batch, "test")
        self.test_confusion.update(probs, batch[1])
        self.test_roc.update(probs, batch[1])
        return probs  # callbacks that score groups of test rows read them (unseen attack types)

    # Metrics are computed once per epoch rather than logged on every step: per-step logging
    # would cost more than a batch-64 step on a GPU and would force a host synchronisation.
    def train_scores(self) -> dict[str, torch.Tensor]:
        """The running epoch's training loss and macro scores, from the statistics on the device."""
        confusion, loss_sum = self._train_confusion, self._train_loss_sum
        if self._trainer is not None and self.trainer.world_size > 1:  # every rank's rows
            confusion = self.trainer.strategy.reduce(confusion, reduce_op="sum")
            loss_sum = self.trainer.strategy.reduce(loss_sum, reduce_op="sum")
        loss = loss_sum / confusion.sum().clamp(min=1)
        return {"train/loss": loss, **{f"train/{k}": v for k, v in macro_scores(confusion).items()}}

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_scores())
        self.log("train/lr", self.learning_rate())
        self._step_scheduler()
        validated = self._last_val_epoch == self.current_epoch
        row = history_row(self.current_epoch, self.trainer.callback_metrics, validated)
        self.history.append(row)
        if not self.trainer.sanity_checking and self.trainer.is_global_zero:
            log.info(self._epoch_line(row))

    def _epoch_line(self, row: dict[str, float | None]) -> str:
        """One console (and train.log) line per epoch; a star marks a new best validation F1."""

        def show(key: str) -> str:
            return "–" if row.get(key) is None else f"{row[key]:.4f}"

        seconds = time.perf_counter() - getattr(self, "_epoch_started", time.perf_counter())
        best = row.get("val/f1_macro") is not None and row["val/f1_macro"] >= float(self.val_f1_best.compute())
        return (
            f"epoch {row['epoch'] + 1:>3}/{self.trainer.max_epochs}  train loss {show('train/loss')}  "
            f"val loss {show('val/loss')}  val acc {show('val/acc')}  val macro-F1 {show('val/f1_macro')}  "
            f"{seconds:5.1f} s" + ("  * new best" if best else "")
        )

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values)
        if not self.trainer.sanity_checking:
            self.val_f1_best.update(values["val/f1_macro"])
            self._last_val_epoch = self.current_epoch
            self.log("val/f1_macro_best", self.val_f1_best.compute())

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
        confusion = self.test_confusion.compute().cpu()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No positive samples in targets")
            fpr, tpr, _ = self.test_roc.compute()
            rows_seen = (dim_zero_cat(self.test_roc.preds), dim_zero_cat(self.test_roc.target))
            precision, recall, _ = multiclass_precision_recall_curve(*rows_seen, self.num_classes)
        self.test_confusion.reset()
        self.test_roc.reset()
        rows = confusion.sum(1).tolist()
        present = [n > 0 for n in rows]  # a class without test rows has no curves
        per_class = per_class_scores(confusion)
        per_class["ap"] = [average_precision(p, r) if n else None for p, r, n in zip(precision, recall, present)]
        for metric, values in per_class.items():
            for name, value in zip(self.class_names, values):
                if value is not None:
                    self.log(f"test/{metric}/{name}", value)
        self.test_report = {
            "confusion_matrix": confusion.tolist(),
            "per_class": {m: dict(zip(self.class_names, v)) for m, v in per_class.items()},
            "roc": {
                name: {"fpr": _thin(f), "tpr": _thin(t)}
                for name, f, t, n in zip(self.class_names, fpr, tpr, present)
                if n
            },
            "pr": {
                name: {"recall": _thin(r), "precision": _thin(p), "ap": ap, "share": round(n / sum(rows), 6)}
                for name, p, r, n, ap in zip(self.class_names, precision, recall, rows, per_class["ap"])
                if n
            },
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["history"] = self.history
        # Dropout draws from the global generators: a resumed run must continue their streams
        # to give the numbers of an uninterrupted one.
        checkpoint["rng"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Resuming a fit continues the curves and random streams; testing a best checkpoint
        # must not cut the curves short.
        if self._trainer is None or self.trainer.state.fn != TrainerFn.FITTING:
            return
        self.history = list(checkpoint.get("history", []))
        rng = checkpoint.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def configure_optimizers(self):
        return optimizers_for(self, self.parameters())

    def learning_rate(self) -> float:
        """The learning rate the epoch trained with (the first parameter group's), before the
        scheduler steps."""
        return float(self.optimizers().param_groups[0]["lr"])

    def _step_scheduler(self) -> None:
        """Manual optimization steps schedulers itself: once per epoch, after validation."""
        scheduler = self.lr_schedulers()
        if scheduler is None:
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            monitored = self.trainer.callback_metrics.get(self.hparams.monitor)
            if monitored is not None:
                scheduler.step(monitored)
        else:
            scheduler.step()


def optimizers_for(module: IDSLitModule | ChunkedTraining, params) -> object:
    """``configure_optimizers``' answer for ``params`` under ``module``'s optimizer and scheduler
    factories: under a CUDA graph a fused, capturable optimizer (which the graph can replay)."""
    optimizer_factory, scheduler_factory = module.optimizer_factory, module.scheduler_factory
    if not module._use_graph:
        optimizer = optimizer_factory(params=params)
    elif scheduler_factory is not None:
        raise ConfigError("model.cuda_graph does not support learning-rate schedulers (the lr is baked in)")
    elif module.trainer.precision != "32-true":
        raise ConfigError(f"model.cuda_graph needs trainer.precision=32-true, not {module.trainer.precision}")
    else:
        optimizer = optimizer_factory(params=params, fused=True, capturable=True)
    if scheduler_factory is None:
        return optimizer
    return [optimizer], [scheduler_factory(optimizer=optimizer)]


def _thin(curve: torch.Tensor) -> list[float]:
    """At most ``ROC_POINTS`` points of a curve, keeping both ends."""
    curve = curve.detach().cpu()
    if len(curve) > ROC_POINTS:
        curve = curve[torch.linspace(0, len(curve) - 1, ROC_POINTS).round().long()]
    return [round(float(v), 6) for v in curve]
