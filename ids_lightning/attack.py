"""Attack a finished run: ``python -m ids_lightning.attack RUN_DIR [--unconstrained] ...``.

Rebuilds the run's datamodule and net from its ``config.yaml`` (allow-listed classes and plain
values only, see :mod:`ids_lightning.runs`), loads the best checkpoint (``weights_only=True``) and
runs the :class:`~ids_lightning.callbacks.AdversarialEval` attacks on
the test split, writing ``robustness[_unconstrained].json`` and ``.png`` into the run folder.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import lightning as L
import torch

from ids_lightning.callbacks import AdversarialEval
from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.models import IDSLitModule
from ids_lightning.runs import rebuild


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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder")
    parser.add_argument("--unconstrained", action="store_true", help="plain L-inf attacks (may touch categories)")
    parser.add_argument(
        "--eps", type=float, nargs="+", default=None, help="budgets in scaled units (default: 0.01 0.02 0.05 0.1 0.2)"
    )
    parser.add_argument("--max-rows", type=int, default=4096, help="0 = the whole test split")
    parser.add_argument("--attacks", nargs="+", default=["fgsm", "pgd"], help="fgsm and/or pgd (default: both)")
    parser.add_argument("--pgd-steps", type=int, default=10, help="PGD steps (default: %(default)s)")
    parser.add_argument("--round-integers", action="store_true", help="round integer counts after unscaling")
    parser.add_argument("--data-dir", default=None, help="data root (default: $IDS_DATA_DIR, else the run's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    summary = attack(
        args.run_dir,
        not args.unconstrained,
        args.eps,
        args.max_rows or None,
        tuple(args.attacks),
        args.pgd_steps,
        args.round_integers,
        args.data_dir,
    )
    for key, value in summary.items():
        if key.startswith("test_adv/") and key.endswith("/acc"):
            print(f"{key}: {value:.4f}")
    return summary


if __name__ == "__main__":
    main()
