"""The kind of run a composed config asks for, chosen once, above the wings that run them: a
federation (``experiment=federated``), seeds trained together (``seeds=[...]``) or one run."""

from __future__ import annotations

from omegaconf import DictConfig


def launch(cfg: DictConfig) -> dict:
    """Run what ``cfg`` describes and return its summary (``metrics.json`` or ``replicas.json``)."""
    if cfg.get("federated"):
        from ids_lightning.federation.apps import train_federated

        return train_federated(cfg)
    if cfg.get("seeds"):
        from ids_lightning.training.seeds import train_seeds

        return train_seeds(cfg)
    from ids_lightning.training.run import train

    return train(cfg)
