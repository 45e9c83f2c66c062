"""What a run tells its loggers beyond Lightning's own: one hparams entry with the final metrics."""

from __future__ import annotations

from collections.abc import Mapping

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf


def flat_hparams(cfg: DictConfig) -> dict[str, object]:
    """The resolved config flattened to ``a/b/c`` keys with TensorBoard-friendly values."""
    flat: dict[str, object] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not str(key).startswith("_"):
                    walk(value, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, (int, float, str, bool)):
            flat[prefix] = node
        elif node is not None:
            flat[prefix] = str(node)

    for group in ("dataset", "model", "trainer"):
        if group in cfg:
            walk(OmegaConf.to_container(cfg[group], resolve=True), group)
    flat["seed"] = cfg.get("seed")
    return flat


def log_hparams(loggers: list[Logger], cfg: DictConfig, metrics: Mapping[str, float | None]) -> None:
    """One TensorBoard hparams entry per run, holding the final validation and test metrics."""
    final = {k: v for k, v in metrics.items() if v is not None and k.startswith(("val/", "test/"))}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(flat_hparams(cfg), metrics=final)
            # after trainer.test the writer is no longer flushed by Lightning: without this
            # the entry can sit in the writer's queue when the caller (or a reader) goes on
            logger.experiment.flush()
