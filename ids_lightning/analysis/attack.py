"""Attack a finished run: ``python -m ids_lightning.cli.attack RUN_DIR [--unconstrained] ...``.

Rebuilds the run's datamodule and net from its ``config.yaml`` (allow-listed classes and plain
values only, see :mod:`ids_lightning.training.run_folder`), loads the best checkpoint (``weights_only=True``) and
runs the :class:`~ids_lightning.training.callbacks.AdversarialEval` attacks on
the test split, writing ``robustness[_unconstrained].json`` and ``.png`` into the run folder.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.models import IDSLitModule
from ids_lightning.training.callbacks import AdversarialEval
from ids_lightning.training.run_folder import rebuild


def attack(
    run_dir: Path,
    constrained: bool = True,
    eps: list[float] | None = None,
    max_rows: int | None = 4096,
    attacks: tuple[str, ...] = ("fgsm", "pgd"),
    pgd_steps: int = 10,
    round_integers: bool = False,
    data_dir: str | Path | None = None,
) -> dict:
    config, datamodule, net = rebuild(run_dir, data_dir)
    # the optimizer is never used: attacks need the net, its loss and its probabilities
    model = IDSLitModule(net, optimizer=torch.optim.Adam, class_names=datamodule.class_names)
    suffix = "" if constrained else "_unconstrained"
    out = run_dir / f"robustness{suffix}"
    out.mkdir(exist_ok=True)
    if not out.resolve().is_relative_to(run_dir.resolve()):
        raise DataError(f"{out} leads outside the run folder ({out.resolve()}): not writing there")
    callback = AdversarialEval(
        str(out),
        eps=tuple(eps or (0.01, 0.02, 0.05, 0.1, 0.2)),
        attacks=attacks,
        pgd_steps=pgd_steps,
        constrained=constrained,
        round_integers=round_integers,
        max_rows=max_rows,
        seed=config.get("seed") if isinstance(config.get("seed"), int) else 0,
    )
    trainer = L.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    results = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    summary = {**{k: float(v) for k, v in results.items()}, **callback.summary}
    atomic_write_json(out / "robustness.json", summary)
    return summary
