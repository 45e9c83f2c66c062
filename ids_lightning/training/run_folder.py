"""Rebuild a finished run from its folder without trusting the folder.

A run folder may come from anywhere, so its ``config.yaml`` is data, never code: it is read with
YAML's safe loader, and the net and the datamodule are built only from allow-listed classes
with plain values (numbers, strings, booleans, lists and mappings of them). Nothing in the folder
is handed to ``hydra.utils.instantiate``; anything else is one :class:`RunFolderError` that names
the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import yaml
from torch import nn

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import atomic_write_json, read_json_object, read_yaml_data
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.data import FlowDataModule, flow_datamodule
from ids_lightning.models import nets, tabular
from ids_lightning.models.nets import build_for
from ids_lightning.training.export import ExportOptions, ProbabilityHead, export_net, load_net_weights

NET_CLASSES = (nets.CNN, nets.LSTM, nets.CNNLSTM, nets.CNNBiLSTM, nets.Transformer, tabular.TabM, tabular.FTTransformer)
NETS = {cls.__name__: cls for cls in NET_CLASSES}
NET_TARGETS = {
    f"{module}.{name}": cls for name, cls in NETS.items() for module in ("ids_lightning.models", cls.__module__)
}
# the datamodule's factory, and the class that older run folders name
DATAMODULE_TARGETS = {
    f"ids_lightning.data.{name}" for name in ("flow_datamodule", "datamodule.flow_datamodule", "FlowDataModule")
} | {"ids_lightning.data.datamodule.FlowDataModule"}
MAX_DEPTH = 8


class RunFolderError(DataError):
    """A run folder's file holds something that a rebuild will not build."""


def read_config(run_dir: Path) -> dict:
    """``config.yaml`` as plain data (:func:`~ids_lightning.core.fileio.read_yaml_data`: YAML's
    safe loader, no tags that build objects, no aliases, bounded in size)."""
    path = run_dir / "config.yaml"
    if not os.path.lexists(path):
        raise RunFolderError(f"{run_dir}: no config.yaml; is this the folder of a finished training run?")
    try:
        config = read_yaml_data(path)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError) as err:
        reason = str(err).splitlines()[0][:160] if isinstance(err, ValueError) else type(err).__name__
        raise RunFolderError(f"{path}: not a readable YAML file ({reason})") from err
    if not isinstance(config, dict):
        raise RunFolderError(f"{path}: the top level must be a mapping")
    return config


def plain(value: object, key: str, source: Path, depth: int = 0) -> object:
    """``value`` if it is plain data with no ``_target_`` inside; else a RunFolderError."""
    if depth > MAX_DEPTH:
        raise RunFolderError(f"{source}: {key} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise RunFolderError(f"{source}: {key} is an integer out of range")
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, list):
        return [plain(v, f"{key}[{i}]", source, depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or k.startswith("_"):
                raise RunFolderError(f"{source}: {key}.{k} is not allowed here (only plain settings are read)")
            out[k] = plain(v, f"{key}.{k}", source, depth + 1)
        return out
    raise RunFolderError(f"{source}: {key} holds a {type(value).__name__}, not a plain value")


def _section(config: dict, key: str, targets: set[str] | dict, source: Path) -> tuple[str, dict]:
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise RunFolderError(f"{source}: {key} is missing or not a mapping")
    target = node.get("_target_")
    if target not in targets:
        raise RunFolderError(f"{source}: {key}._target_ {target!r} is not one of {sorted(targets)}")
    return target, {k: plain(v, f"{key}.{k}", source) for k, v in node.items() if k != "_target_"}


def rows_config(config: dict) -> dict:
    """What decides a run's rows and features (its dataset config, less where it reads and
    writes, and the training order's seed and shuffle buffer): two runs with equal ones trained,
    validated and tested on the same rows."""
    ignored = ("output_dir", "data_dir", "shuffle_seed", "shuffle_buffer")
    return {k: v for k, v in (config.get("dataset") or {}).items() if k not in ignored}


def build_net(config: dict, source: Path, pre: Preprocessor) -> nn.Module:
    """The run's net from ``model.net`` (one of the project's nets, plain arguments only), sized
    for the model input of its preprocessing ``pre``."""
    target, args = _section(config, "model.net", NET_TARGETS, source)
    try:
        net_class = NET_TARGETS[target]
        return build_for(
            lambda width, **codes: net_class(
                num_features=width, num_classes=len(pre.class_names), window=pre.window, **args, **codes
            ),
            pre,
            net_class,
        )
    except (TypeError, ValueError) as err:
        raise RunFolderError(f"{source}: model.net does not build a {target}: {err}") from err


def build_datamodule(config: dict, source: Path, data_dir: str | Path | None = None) -> FlowDataModule:
    """The run's datamodule from ``dataset``, with the data root taken from ``data_dir``, else
    ``$IDS_DATA_DIR``, else ``data`` (as training's ``paths.data_dir``), never from the folder:
    a run folder names its files relative to the data root, and a path that leaves it is refused."""
    _, args = _section(config, "dataset", DATAMODULE_TARGETS, source)
    for key in ("files", "test_files"):
        patterns = args.get(key) or []
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            if Path(str(pattern)).is_absolute() or str(pattern).startswith("~") or ".." in Path(str(pattern)).parts:
                raise RunFolderError(f"{source}: dataset.{key} {pattern!r} leaves the data root")
    args["data_dir"] = str(data_dir or os.environ.get("IDS_DATA_DIR") or "data")
    args["output_dir"] = None
    try:
        return flow_datamodule(**args)
    except (TypeError, ConfigError) as err:
        raise RunFolderError(f"{source}: dataset does not build a FlowDataModule: {err}") from err


def best_checkpoint(run_dir: Path) -> Path:
    """The monitored best checkpoint (``epoch_*.ckpt``), else ``last.ckpt``."""
    checkpoints = sorted(p for p in (run_dir / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt")
    return (checkpoints or [run_dir / "checkpoints" / "last.ckpt"])[-1]


def rebuild(run_dir: Path, data_dir: str | Path | None = None) -> tuple[dict, FlowDataModule, nn.Module]:
    """``(config, datamodule set up, net with the best checkpoint's weights)`` of a run folder."""
    config = read_config(run_dir)
    datamodule = build_datamodule(config, run_dir / "config.yaml", data_dir)
    datamodule.setup("test")
    net = best_net(run_dir, config, datamodule.preprocessor)
    return config, datamodule, net


def best_net(run_dir: Path, config: dict, pre: Preprocessor) -> nn.Module:
    """The run's net, sized as trained, with the best checkpoint's weights, in eval mode."""
    net = build_net(config, run_dir / "config.yaml", pre)
    return load_net_weights(net, best_checkpoint(run_dir)).eval()


def load_best_model(run_dir: Path) -> nn.Module:
    """A finished run's best net as the exported model (probabilities out), sized from
    ``preprocess.json``: no data files needed."""
    pre = Preprocessor.load(run_dir / "preprocess.json")
    net = best_net(run_dir, read_config(run_dir), pre)
    return ProbabilityHead(net, len(pre.class_names) == 2).eval()


def update_metrics(run_dir: Path, values: dict) -> None:
    """Merge ``values`` into the run's ``metrics.json`` (atomically)."""
    path = run_dir / "metrics.json"
    metrics = read_json_object(path, "a metrics.json of a finished run") if path.exists() else {}
    atomic_write_json(path, {**metrics, **values})


def reexport(run_dir: Path, data_dir: str | Path | None = None) -> dict:
    """Export a finished run again (its best checkpoint, with the export options its config
    names, else the defaults) and update the ``onnx/*`` entries of its ``metrics.json``."""
    config, datamodule, net = rebuild(run_dir, data_dir)
    saved = config.get("export") if isinstance(config.get("export"), dict) else {}
    chosen = {}
    for key, default in asdict(ExportOptions()).items():
        if key in saved:
            value = plain(saved[key], f"export.{key}", run_dir / "config.yaml")
            if type(value) is not type(default):
                raise RunFolderError(f"{run_dir / 'config.yaml'}: export.{key} must be a {type(default).__name__}")
            chosen[key] = value
    summary = export_net(net, datamodule, run_dir, ExportOptions(**chosen))
    update_metrics(run_dir, summary)
    return summary
