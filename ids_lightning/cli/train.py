"""``ids train`` / ``python train.py [overrides]``: one run, seeds trained together
(``seeds=[...]``) or a federation (``experiment=federated``), or a sweep with ``-m``; Hydra
composes ``ids_lightning/conf/``."""

from __future__ import annotations

import logging
import sys

import hydra
import lightning.pytorch  # noqa: F401 - before Hydra's logging: imported after it, its lines print twice
from omegaconf import DictConfig, OmegaConf

from ids_lightning.core.errors import REFUSALS, REFUSED, exit_status, refused
from ids_lightning.launch import launch
from ids_lightning.training.config import CONFIG_DIR, register_resolvers, sweep_value, unknown_keys

log = logging.getLogger("ids_lightning.cli.train")
register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    try:
        return sweep_value(launch(cfg), cfg.get("optimized_metric"))
    except REFUSALS as err:  # one line, not Hydra's traceback (Hydra only lets SystemExit through)
        raise SystemExit(refused("ids train", err)) from None


def main(argv: list[str] | None = None) -> int:
    """A mistyped key is refused with the closest real one before Hydra makes a run folder.
    Hydra reads ``sys.argv`` itself and exits non-zero when a run fails."""
    argv = list(sys.argv[1:] if argv is None else argv)
    problems = unknown_keys([arg for arg in argv if not arg.startswith("-")])
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return REFUSED
    sys.argv = [sys.argv[0], *argv]
    _hydra_main()
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
