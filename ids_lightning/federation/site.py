"""One federated site (a Flower client): its own rows, its statistics for the shared
preprocessing, local training of the global model with the project's LightningModule and fast
data path, and validation counts. No row leaves a site; only statistics, weights and counts do.

In a simulation every site reads the same files and keeps its part (``federated.partition``);
at a real site ``federated.partition=whole`` keeps every row of the site's own files.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig

from ids_lightning.core import partitions
from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.preprocess import Preprocessor, site_statistics
from ids_lightning.core.table import RawTable
from ids_lightning.data import FlowDataModule
from ids_lightning.models.module import IDSLitModule
from ids_lightning.training.config import instantiate, model_from_config
from ids_lightning.training.console import quiet

log = logging.getLogger(__name__)
STRATEGIES = ("fedavg", "fedprox", "fedmedian", "fedtrimmedavg", "krum")
ATTACKS = ("label_flip", "scale")


def partition_kind(cfg: DictConfig, datamodule: FlowDataModule, train: RawTable) -> str:
    """``federated.partition`` with ``auto`` resolved: by the spec's partition column (IoT-23
    captures, BoT-IoT source addresses) where the training rows carry it, else Dirichlet label
    skew (BoT-IoT's reduced-feature layout has no addresses)."""
    kind = cfg.federated.partition
    partitions_known = (*partitions.PARTITIONS, "auto")
    if kind not in partitions_known:
        raise ConfigError(f"federated.partition must be one of {partitions_known}, not {kind!r}")
    if kind == "auto":
        columns = datamodule.spec.partition_columns
        return "column" if columns and columns[0] in train.meta else "dirichlet"
    return kind


def site_rows(cfg: DictConfig, datamodule: FlowDataModule, tables: dict[str, RawTable]) -> dict[str, list[np.ndarray]]:
    """Per split (train, val), each site's row numbers under the configured partition."""
    train, val = tables["train"], tables["val"]
    fed, kind = cfg.federated, partition_kind(cfg, datamodule, train)
    if kind == "whole":
        return {name: [np.arange(len(tables[name]))] for name in ("train", "val")}
    if kind == "column":
        if not datamodule.spec.partition_columns:
            raise ConfigError(f"{datamodule.spec.title} has no partition column: use dirichlet or family")
        column = datamodule.spec.partition_columns[0]
        if column not in train.meta:
            raise DataError(f"{datamodule.spec.title} files here carry no {column!r} column to partition by")
        rows, values = partitions.by_column(train.meta[column], fed.clients)
        val_values = np.asarray(val.meta[column]).astype(str)
        return {"train": rows, "val": [np.flatnonzero(np.isin(val_values, v)) for v in values]}
    sites = fed.clients or 10

    def split(table: RawTable, seed: int) -> list[np.ndarray]:
        if kind == "dirichlet":
            return partitions.dirichlet(table.labels.astype(str), sites, fed.alpha, seed)
        return partitions.by_family(table.labels, sites, set(datamodule.spec.benign), seed)

    return {"train": split(train, cfg.seed), "val": split(val, cfg.seed + 1)}


def site_count(cfg: DictConfig) -> int:
    """How many sites the configured partition makes (reads the data under ``column``)."""
    datamodule = instantiate(cfg.dataset)
    tables, _ = datamodule.load_splits()
    return len(site_rows(cfg, datamodule, tables)["train"])


class Site:
    """Site ``index`` of ``count``: its training and validation rows (the test rows stay with
    whoever tests the global model)."""

    def __init__(self, cfg: DictConfig, index: int, count: int):
        quiet()
        logging.getLogger("ids_lightning.models.module").setLevel(logging.WARNING)  # no line per local epoch
        self.cfg, self.index = cfg, index
        self.datamodule: FlowDataModule = instantiate(cfg.dataset, output_dir=None)
        task = self.datamodule.options.split.task
        if self.datamodule.spec.tasks[task] is None:
            raise ConfigError(
                f"federated training needs a task with fixed classes (sites must agree on them); "
                f"{self.datamodule.spec.title}'s {task!r} learns its classes from training"
            )
        tables, self.class_names = self.datamodule.load_splits()
        rows = site_rows(cfg, self.datamodule, tables)
        whole = partition_kind(cfg, self.datamodule, tables["train"]) == "whole"  # a real site: its own files
        if not whole and len(rows["train"]) != count:
            raise ConfigError(f"the partition makes {len(rows['train'])} sites, but {count} were started")
        part = 0 if whole else index
        self.tables = {name: tables[name].take(rows[name][part]) for name in ("train", "val")}
        if not len(self.tables["train"]):
            raise DataError(f"site {index} holds no training rows")
        self.malicious = index < cfg.federated.malicious
        self._key: str | None = None
        self.model: IDSLitModule | None = None

    def statistics(self) -> dict:
        """What the site shares for the preprocessing: :func:`site_statistics` of its training rows."""
        return site_statistics(self.tables["train"], self.cfg.dataset.scaler)

    def use(self, state: dict) -> None:
        """Tensors of the site's rows under the merged preprocessing ``state`` (once per state)."""
        key = str(sorted(state.items()))
        if key == self._key:
            return
        preprocessor = Preprocessor.from_dict(state, source="the server's preprocessing")
        if list(preprocessor.class_names) != list(self.class_names):
            raise DataError(f"the server's classes {preprocessor.class_names} are not this site's {self.class_names}")
        self.datamodule.build(self.tables, self.class_names, preprocessor)
        if self.malicious and self.cfg.federated.attack == "label_flip":
            x, y = self.datamodule.tensors["train"]
            self.datamodule.tensors["train"] = (x, len(self.class_names) - 1 - y)
        self.model = model_from_config(self.cfg, preprocessor, self.datamodule.class_weights)
        self._key = key

    @property
    def rows(self) -> int:
        return len(self.datamodule.tensors["train"][1])

    def fit(self, weights: OrderedDict, server_round: int, epochs: int, mu: float) -> tuple[OrderedDict, dict]:
        """``epochs`` local epochs from the global ``weights`` (FedProx term ``mu``); the new
        weights and the training loss. A malicious site sends its update (from honest training
        under ``attack=scale``, from reversed labels under ``label_flip``) multiplied by
        ``attack_scale``: boosted so that averaging does not dilute it."""
        seed = self.cfg.seed + 1000 * server_round + self.index
        L.seed_everything(seed, workers=True, verbose=False)
        self.datamodule.reorder(seed)  # a new data order every round
        self.model.net.load_state_dict(weights)
        self.model.anchor(mu)
        self.model.history = []
        trainer: L.Trainer = instantiate(
            self.cfg.trainer,
            max_epochs=epochs,
            callbacks=[],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            default_root_dir=None,
        )
        trainer.fit(self.model, datamodule=self.datamodule)
        self.model.anchor(0)
        new = OrderedDict((k, v.detach().cpu().clone()) for k, v in self.model.net.state_dict().items())
        if self.malicious:
            factor = self.cfg.federated.attack_scale
            new = OrderedDict((k, weights[k] + factor * (v - weights[k])) for k, v in new.items())
        return new, {"train_loss": float(self.model.history[-1]["train/loss"])}

    def confusion(self, weights: OrderedDict, stage: str = "val") -> np.ndarray:
        """The confusion matrix (rows = true class) of ``weights`` on the site's ``stage`` rows."""
        self.model.net.load_state_dict(weights)
        return confusion(self.model, *self.datamodule.tensors[stage], self.datamodule.options.loader.eval_batch_size)


@torch.no_grad()
def confusion(model: IDSLitModule, x, y: torch.Tensor, batch_size: int) -> np.ndarray:
    """Counts of (true, predicted) class over the rows ``x``, ``y`` in eval mode."""
    model.eval()
    classes = model.num_classes
    counts = torch.zeros(classes * classes, dtype=torch.long)
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])
        predicted = (logits.squeeze(-1) > 0).long() if model.binary else logits.argmax(dim=-1)
        counts += torch.bincount(y[start : start + batch_size] * classes + predicted, minlength=classes * classes)
    model.train()
    return counts.view(classes, classes).numpy()
