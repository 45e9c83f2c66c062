"""Hydra glue: the resolvers ``ids_lightning/conf/`` uses, composing outside ``@hydra.main``, building config
groups, and the value a sweeper optimises."""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Mapping
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict

from ids_lightning.core.errors import ConfigError, DataError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Hydra's config groups ship inside the package (package data), so an installed wheel trains.
CONFIG_DIR = PACKAGE_DIR / "conf"


def _project_root() -> Path:
    """The checkout that holds the package (outputs/ and docs/ live there), or, for an installed
    package, the working directory."""
    checkout = PACKAGE_DIR.parent
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


PROJECT_ROOT = _project_root()
# One random id per process: with the time, it keeps run folders apart even for two sweeps
# launched in the same second, while every job of one sweep agrees on its sweep folder.
RUN_ID = secrets.token_hex(3)
# No logger, no progress bar: the overrides of runs that benchmarks, tools and tests start.
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "callbacks.progress_bar=null"]


def register_resolvers() -> None:
    """The resolvers ``conf/`` uses, and the ``export`` group, whose schema and defaults are
    :class:`~ids_lightning.training.export.ExportOptions`."""
    from hydra.core.config_store import ConfigStore

    from ids_lightning.training.export import ExportOptions

    ConfigStore.instance().store(group="export", name="onnx", node=ExportOptions)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: RUN_ID)
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def compose(overrides: list[str], output_dir: str | Path, data_dir: str | Path | None = None) -> DictConfig:
    """Compose ``ids_lightning/conf/train.yaml`` outside ``@hydra.main`` (tests, benchmarks, search drivers),
    with the run folder at ``output_dir``, as ``train.py`` would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
        if data_dir is not None:
            cfg.paths.data_dir = str(data_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def instantiate(node: DictConfig, **kwargs) -> object:
    """``hydra.utils.instantiate`` of the project's own config, with the project's own errors
    (a refused setting, missing data) raised as they are instead of wrapped by Hydra."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, (DataError, ConfigError)):
            raise err.__cause__ from None
        raise


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a config group that maps names to ``_target_`` nodes.

    Entries set to null are switched off (``callbacks.early_stopping=null``).
    """
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node and "_target_" in node]


def model_from_config(cfg: DictConfig, pre, class_weights: list[float] | None = None):
    """The config's LightningModule (``model``) around its net (``model.net``), both sized for the
    input and classes the preprocessing ``pre`` produces: a training run, seeds trained together,
    a federated site and the federated server build theirs alike."""
    from ids_lightning.models.nets import build_for

    classes = len(pre.class_names)
    net = build_for(
        lambda width, **codes: instantiate(
            cfg.model.net, num_features=width, num_classes=classes, window=pre.window, **codes
        ),
        pre,
        hydra.utils.get_class(cfg.model.net._target_),
    )
    return instantiate(cfg.model, net=net, class_names=list(pre.class_names), class_weights=class_weights)


def config_choice(group: str, default: str) -> str:
    """The option chosen for a config group (``model=cnn_lstm`` gives ``cnn_lstm``)."""
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group, default))
    return default


def sweep_value(metrics: Mapping[str, object], name: str | None) -> float | None:
    """The value a sweeper optimises; an unknown name is an error, never a silent None."""
    if name is None:
        return None
    if name not in metrics or metrics[name] is None:
        numeric = sorted(k for k, v in metrics.items() if isinstance(v, float))
        raise KeyError(f"optimized_metric {name!r} is not in metrics.json; available: {numeric}")
    return float(metrics[name])


def unknown_keys(overrides: list[str]) -> list[str]:
    """One message per ``a.b=value`` override whose key the composed config lacks, with the
    closest real key: Hydra's own hint (append it with ``+``) would add the typo silently."""
    selections = [o for o in overrides if "=" in o and not o.startswith(("+", "~")) and "." not in o.split("=")[0]]
    dotted = [o.split("=")[0] for o in overrides if "=" in o and not o.startswith(("+", "~", "hydra."))]
    dotted = [key for key in dotted if "." in key]
    if not dotted:
        return []
    first_of_sweeps = [s.split("=", 1)[0] + "=" + s.split("=", 1)[1].split(",")[0] for s in selections]
    try:
        cfg = compose([s for s in first_of_sweeps if not s.startswith("hydra")], "unused")
    except Exception:  # a bad group choice: Hydra says it best, when it composes
        return []
    keys = set(_dotted_keys(OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))))
    messages = []
    for key in dotted:
        if key not in keys and not any(k.startswith(key + ".") for k in keys):
            close = difflib.get_close_matches(key, sorted(keys), n=1, cutoff=0.6)
            messages.append(f"unknown config key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return messages


def _dotted_keys(node: object, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    keys = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        keys.append(path)
        keys.extend(_dotted_keys(value, f"{path}."))
    return keys
