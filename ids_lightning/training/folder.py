"""A run folder's ownership: one process per folder, the resolved config written first, and no
folder left behind by a run that failed before it trained."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ids_lightning.core.errors import ConfigError, RunInUseError
from ids_lightning.core.fileio import atomic_write_bytes, is_primary_process, read_json_object
from ids_lightning.training.checks import check_config
from ids_lightning.training.config import RUN_ID
from ids_lightning.training.console import quiet
from ids_lightning.training.run_folder import read_config

log = logging.getLogger(__name__)

FIT_RECORD = "fit.json"
STARTUP_FILES = {".hydra", "config.yaml", ".lock"}  # and the log, <job name>.log


# What may differ between a run and its re-run: where things are, and how a re-run behaves.
UNCOMPARED = {"hydra", "paths", "skip_finished", "auto_resume", "ckpt_path", "allow_changed_config", "logger"}
UNCOMPARED_DATASET = {"data_dir", "output_dir"}


def finished_summary(cfg: DictConfig, name: str) -> dict | None:
    """The summary ``name`` of a finished run in ``cfg``'s folder, when re-runs skip finished
    runs (``skip_finished``); else None. A folder that holds a run of another config is refused
    first (:func:`check_same_run`), finished or not."""
    check_same_run(cfg)
    finished = Path(cfg.paths.output_dir) / name
    if not (cfg.get("skip_finished") and finished.is_file()):
        return None
    log.info("%s exists: this run already finished, skipping it", finished)
    return read_json_object(finished, "the summary of a finished run")


@contextmanager
def started_run(cfg: DictConfig) -> Iterator[Path]:
    """The start every kind of run shares: settings checked, its folder owned, the resolved
    config written, the seed set. Yields the run folder."""
    output_dir = Path(cfg.paths.output_dir)
    with owned_folder(output_dir):
        check_config(cfg)
        with log_to_folder(output_dir):
            quiet()
            log.info("run folder: %s", output_dir)
            record_start(cfg, output_dir)
            write_config(cfg, output_dir)
            L.seed_everything(cfg.seed, workers=True, verbose=False)
            yield output_dir


@contextmanager
def log_to_folder(output_dir: Path) -> Iterator[None]:
    """The log in the run folder while the accepted run lasts: ``train.log``, or Hydra's job name
    (``train_ddp_process_1.log`` for a further DDP process), each job of a sweep its own; opened
    here, after the checks, so a refused run writes nothing there."""
    name = HydraConfig.get().job.name if HydraConfig.initialized() else "train"
    handler = logging.FileHandler(output_dir / f"{name}.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


@contextmanager
def owned_folder(output_dir: Path) -> Iterator[None]:
    """Hold ``output_dir`` for this run: locked on the primary process (further ranks of a
    distributed run share rank 0's folder), removed again if the run fails before it trained."""
    if not is_primary_process():
        yield
        return
    try:
        with run_lock(output_dir):
            yield
    except Exception:
        remove_if_empty(output_dir)
        raise


@contextmanager
def run_lock(output_dir: Path) -> Iterator[None]:
    """One process per run folder: two runs into one folder would interleave checkpoints and
    events, so the second refuses. The lock dies with its process (a killed run can re-run)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RunInUseError(
                f"{output_dir} is in use by another run (pid {handle.read().strip() or '?'}); "
                "wait for it or choose another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def remove_if_empty(output_dir: Path) -> None:
    """A run that failed before it trained leaves no folder behind (only Hydra's and the run's
    start-up files were in it); one with checkpoints stays, to be resumed."""
    names = {p.name for p in output_dir.iterdir()} if output_dir.is_dir() else None
    if names is not None and all(name in STARTUP_FILES or name.endswith(".log") for name in names):
        shutil.rmtree(output_dir, ignore_errors=True)


def record_start(cfg: DictConfig, output_dir: Path) -> None:
    """Hydra's record of this start (the composed config, Hydra's own settings and the command
    line's overrides) in ``.hydra/<time>_<run id>/``, written here, once the run is accepted,
    rather than by Hydra before the checks: a refused run adds nothing to another run's folder."""
    if not (is_primary_process() and HydraConfig.initialized()):
        return
    hydra = HydraConfig.get()
    record = output_dir / ".hydra" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{RUN_ID}"
    files = {
        "config.yaml": without_hydra(cfg),
        "hydra.yaml": OmegaConf.create({"hydra": hydra}),
        "overrides.yaml": OmegaConf.create(OmegaConf.to_container(hydra.overrides.task)),
    }
    for name, node in files.items():
        atomic_write_bytes(record / name, OmegaConf.to_yaml(node).encode())


def write_config(cfg: DictConfig, output_dir: Path) -> None:
    """The resolved config beside the results, first: tools rebuild the run's net from it."""
    if is_primary_process():
        atomic_write_bytes(output_dir / "config.yaml", OmegaConf.to_yaml(without_hydra(cfg), resolve=True).encode())


def check_same_run(cfg: DictConfig) -> None:
    """Refuse to resume, complete or skip the run in ``cfg``'s folder when its ``config.yaml``
    says it was started with another config, naming the keys that differ (``allow_changed_config``
    lets it go on under the new one, with a warning). Checked before anything is written."""
    saved_path = Path(cfg.paths.output_dir) / "config.yaml"
    if not saved_path.is_file():
        return
    saved = read_config(saved_path.parent)  # as data, as every tool reads a run folder
    changed = _differing(_compared(saved), comparable_config(cfg))
    if not changed:
        return
    shown = ", ".join(changed[:12]) + (f" and {len(changed) - 12} more" if len(changed) > 12 else "")
    if not cfg.get("allow_changed_config"):
        raise ConfigError(
            f"{saved_path.parent} holds a run of another config ({shown} differ): choose another folder, "
            "or add allow_changed_config=true to go on with that run under this config"
        )
    log.warning("going on with the run in %s under a changed config: %s differ", saved_path.parent, shown)


def comparable_config(cfg: DictConfig) -> dict:
    """The resolved config without where things are or how a re-run behaves: what two runs
    of the same settings share (compared on resume; hashed into the provenance)."""
    return _compared(OmegaConf.to_container(without_hydra(cfg), resolve=True))


def _compared(config: object) -> object:
    if not isinstance(config, dict):
        return config
    compared = {k: v for k, v in config.items() if k not in UNCOMPARED}
    if isinstance(compared.get("dataset"), dict):
        compared["dataset"] = {k: v for k, v in compared["dataset"].items() if k not in UNCOMPARED_DATASET}
    return compared


def _differing(saved: object, current: object, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain configs."""
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current), key=str)
        return [d for k in keys for d in _differing(saved.get(k), current.get(k), f"{prefix}{k}.")]
    return [] if saved == current else [prefix.rstrip(".") or "the whole config"]


def without_hydra(cfg: DictConfig) -> DictConfig:
    return OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
