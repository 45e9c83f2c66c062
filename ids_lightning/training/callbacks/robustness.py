"""Robustness of the tested model to FGSM and PGD, at test end, on the test split.

For each attack and eps: accuracy, macro-F1 and the evasion rate (the share of malicious test
rows the model flagged as an attack on clean input that the attack turns into the benign
class). Logged to TensorBoard, added to ``metrics.json`` as ``test_adv/<attack>/eps_<eps>/<metric>``
and drawn in ``robustness.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import matplotlib.pyplot as plt
import torch

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.fileio import atomic_path
from ids_lightning.models.attacks import Constraints, fgsm, pgd
from ids_lightning.models.metrics import macro_scores

log = logging.getLogger(__name__)


class AdversarialEval(L.Callback):
    """FGSM at each eps and PGD (``pgd_steps`` steps, ``pgd_step_size`` or 2.5·eps/steps, random
    start) on up to ``max_rows`` test rows (the first ones; null = all)."""

    def __init__(
        self,
        output_dir: str,
        eps: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2),
        attacks: tuple[str, ...] = ("fgsm", "pgd"),
        pgd_steps: int = 10,
        pgd_step_size: float | None = None,
        pgd_random_start: bool = True,
        constrained: bool = True,
        round_integers: bool = False,
        max_rows: int | None = 4096,
        batch_size: int = 1024,
        seed: int = 0,
    ):
        self.output_dir = Path(output_dir)
        self.eps = [float(e) for e in eps]
        self.attacks = list(attacks)
        unknown = set(self.attacks) - {"fgsm", "pgd"}
        if unknown:
            raise ConfigError(f"unknown attacks {sorted(unknown)}; expected fgsm and/or pgd")
        self.pgd = {"steps": pgd_steps, "step_size": pgd_step_size, "random_start": pgd_random_start}
        self.constrained, self.round_integers = constrained, round_integers
        self.max_rows, self.batch_size, self.seed = max_rows, batch_size, seed
        self.summary: dict = {}

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.datamodule is None or trainer.sanity_checking:
            return
        x, y = trainer.datamodule.tensors["test"]
        rows = self.max_rows or len(y)
        x, y = x[:rows], y[:rows]  # windows: materialised, the attacker may change the whole window
        x, y = x.to(pl_module.device), y.to(pl_module.device)
        pre = trainer.datamodule.preprocessor
        constraints = (
            Constraints.from_preprocessor(pre, self.round_integers)
            if self.constrained
            else Constraints.none(tuple(x.shape[1:]))
        )
        spec = trainer.datamodule.spec
        benign = next((i for i, name in enumerate(pl_module.class_names) if spec.is_benign(name)), None)
        pl_module.eval()
        clean_pred = self._predict(pl_module, x)
        self.summary = {"test_adv/rows": len(y), "test_adv/constrained": self.constrained}
        for attack in self.attacks:
            for eps in self.eps:
                adversarial = self._attack(pl_module, attack, x, y, eps, constraints)
                scores = self.scores(
                    pl_module.num_classes, benign, clean_pred, self._predict(pl_module, adversarial), y
                )
                self.summary |= {f"test_adv/{attack}/eps_{eps:g}/{k}": v for k, v in scores.items()}
        for logger in trainer.loggers:
            logger.log_metrics({k: v for k, v in self.summary.items() if isinstance(v, float)}, trainer.global_step)
        self._plot(trainer)
        log.info("adversarial evaluation: %s", self.summary)

    def _attack(self, module, attack, x, y, eps, constraints) -> torch.Tensor:
        generator = torch.Generator(device=x.device).manual_seed(self.seed)
        parts = []
        for xb, yb in zip(x.split(self.batch_size), y.split(self.batch_size)):
            if attack == "fgsm":
                parts.append(fgsm(module.net, module.loss, xb, yb, eps, constraints))
            else:
                parts.append(pgd(module.net, module.loss, xb, yb, eps, constraints, generator=generator, **self.pgd))
        return torch.cat(parts)

    @staticmethod
    @torch.no_grad()
    def _predict(module, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([module.probabilities(module.net(xb)).argmax(1) for xb in x.split(4096)])

    @staticmethod
    def scores(
        num_classes: int, benign: int | None, clean: torch.Tensor, adversarial: torch.Tensor, y: torch.Tensor
    ) -> dict[str, float]:
        """Accuracy and macro-F1 under attack, and (with a benign class) the evasion rate."""
        confusion = torch.zeros(num_classes, num_classes, dtype=torch.long, device=y.device)
        confusion.view(-1).scatter_add_(0, y * num_classes + adversarial, torch.ones_like(y))
        macro = macro_scores(confusion)
        scores = {"acc": float(macro["acc"]), "f1_macro": float(macro["f1_macro"])}
        if benign is not None:
            detected = (y != benign) & (clean != benign)
            evaded = detected & (adversarial == benign)
            scores["evasion_rate"] = float(evaded.sum() / detected.sum().clamp(min=1))
        return scores

    def _plot(self, trainer: L.Trainer) -> None:
        metrics = [m for m in ("acc", "f1_macro", "evasion_rate") if any(k.endswith(f"/{m}") for k in self.summary)]
        fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4))
        for ax, metric in zip(axes, metrics):
            for attack in self.attacks:
                values = [self.summary[f"test_adv/{attack}/eps_{eps:g}/{metric}"] for eps in self.eps]
                ax.plot(self.eps, values, marker="o", label=attack.upper())
            ax.set_xlabel("ε (scaled feature units)")
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.legend()
        mode = "constrained" if self.constrained else "unconstrained"
        fig.suptitle(f"Robustness on {self.summary['test_adv/rows']} test rows ({mode})")
        fig.tight_layout()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.output_dir / "robustness.png") as tmp:
            fig.savefig(tmp, dpi=120)
        for logger in trainer.loggers:
            if hasattr(logger, "experiment") and hasattr(logger.experiment, "add_figure"):
                logger.experiment.add_figure("test/robustness", fig, global_step=trainer.global_step)
        plt.close(fig)
