"""The run's loggers: TensorBoard and MLflow as Lightning's, with what a run tells them beyond
Lightning's own (the config as parameters at the start; the final metrics, the figures and the
deployable files at the end), one event file and one MLflow run per run folder."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
# What an MLflow run keeps of its folder: the deployable model, what the detector reads beside
# it, what the run measured and drew (checkpoints and bench rows stay in the folder).
ARTIFACTS = (
    "model.onnx",
    "model.int8.onnx",
    "preprocess.json",
    "novelty.json",
    "operating_points.json",
    "density.json",
    "explain.json",
    "provenance.json",
    "metrics.json",
    "evaluation.json",
    "config.yaml",
)
GROUP_TAG = "ids.group"  # the folder of a sweep or of seeds trained together


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


class _EpochOncePerStep:
    """Lightning adds ``epoch`` to every call of ``log_metrics``; a training and a validation
    epoch end at the same step, so it was logged twice per step. Here once."""

    _epoch_step: int | None = None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if "epoch" in metrics:
            if step is not None and step == self._epoch_step:
                metrics = {k: v for k, v in metrics.items() if k != "epoch"}
            self._epoch_step = step
        if metrics:
            super().log_metrics(metrics, step)


class RunTensorBoardLogger(_EpochOncePerStep, TensorBoardLogger):
    """TensorBoard with one event file per run and process: Lightning closes the writer at the
    end of the fit and of the test, and whatever is logged next opened a new file (three per
    run). Here those ends flush it, and the run closes it once (:func:`finish`)."""

    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()
        if status == "success":
            self.save()

    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()
            self._experiment = None


class RunMLFlowLogger(_EpochOncePerStep, MLFlowLogger):
    """MLflow for one run folder: named after the folder, tagged with its path and its group (a
    sweep's or the seeds' folder, also the MLflow parent run, so that the UI nests them), ended
    once by the run (:func:`finish`) rather than at the end of the fit.

    ``tracking_uri``: a local SQLite file by default (no server), or a server's address;
    ``artifact_root``: where a local store keeps artifacts (a server keeps its own)."""

    def __init__(self, run_dir: str, group: str | None = None, artifact_root: str | None = None, **kwargs):
        local = str(kwargs.get("tracking_uri") or "").startswith(("sqlite:", "file:"))
        if local and artifact_root and kwargs.get("artifact_location") is None:
            kwargs["artifact_location"] = Path(artifact_root).resolve().as_uri()
        if group is None:
            group = _sweep_folder()
        tags = {**(kwargs.pop("tags", None) or {}), "run_dir": str(run_dir), **({GROUP_TAG: group} if group else {})}
        super().__init__(run_name=kwargs.pop("run_name", None) or Path(run_dir).name, tags=tags, **kwargs)
        self.group = group

    def finalize(self, status: str = "success") -> None:
        if status != "success":  # a failed fit ends the MLflow run as failed
            super().finalize(status)

    def join_group(self) -> None:
        """Nest this run under its group's parent run, made by the group's first run."""
        if not self.group:
            return
        client, experiment = self.experiment, self.experiment_id
        escaped, tag = self.group.replace("'", "\\'"), f"{GROUP_TAG}.parent"
        found = client.search_runs([experiment], filter_string=f"tags.`{tag}` = '{escaped}'", max_results=1)
        if found:
            parent = found[0].info.run_id
        else:
            run = client.create_run(experiment, run_name=Path(self.group).name, tags={tag: self.group})
            parent = run.info.run_id
            client.set_terminated(parent)
        client.set_tag(self.run_id, "mlflow.parentRunId", parent)

    def log_folder(self, output_dir: Path) -> None:
        """The run folder's deployable and measured files, and its figures, as artifacts."""
        client = self.experiment
        for name in ARTIFACTS:
            if (output_dir / name).is_file():
                client.log_artifact(self.run_id, str(output_dir / name))
        for figure in sorted(output_dir.glob("*.png")):
            client.log_artifact(self.run_id, str(figure), "figures")


def _sweep_folder() -> str | None:
    """The sweep's folder when Hydra runs this job as one of a sweep (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    return str(hydra.sweep.dir) if hydra.mode == RunMode.MULTIRUN else None


def start(loggers: list[Logger], cfg: DictConfig) -> None:
    """Before the fit: the config as parameters (TensorBoard's ``hparams.yaml`` too), and an
    MLflow run nested under its group."""
    params = flat_hparams(cfg)
    for logger in loggers:
        logger.log_hyperparams(params)
        if isinstance(logger, RunMLFlowLogger):
            logger.join_group()


def finish(loggers: list[Logger], cfg: DictConfig, metrics: Mapping[str, object], output_dir: Path, step: int) -> None:
    """After the run: the final validation and test metrics (TensorBoard's hparams entry, MLflow's
    values at the last ``step``), the run folder's files as MLflow artifacts; then each logger is
    closed."""
    final = {k: float(v) for k, v in metrics.items() if k.startswith(("val/", "test/")) and _number(v)}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(flat_hparams(cfg), metrics=final)
            logger.save()
        if isinstance(logger, RunMLFlowLogger):
            logger.log_metrics(final, step)
            logger.log_folder(output_dir)
            MLFlowLogger.finalize(logger, "success")
        if isinstance(logger, RunTensorBoardLogger):
            logger.close()
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.flush()


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
