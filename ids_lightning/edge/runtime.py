"""Load a run folder for inference: preprocessing JSON + ONNX model, checked against each other."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ids_lightning.core.density import DENSITY_FILE, BenignDensity
from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import regular_file
from ids_lightning.core.novelty import Novelty
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.spec import DatasetSpec
from ids_lightning.core.windows import WindowedRows
from ids_lightning.datasets import get_spec

CLASS_NAMES_KEY = "ids_lightning.class_names"  # ONNX metadata: the class order of the output


# The first onnxruntime with ConvInteger on int8 weights, which the int8 export writes (1.19 to
# 1.23 refuse model.int8.onnx with NotImplemented; it is also the first that needs Python 3.11)
INT8_ONNXRUNTIME = (1, 24)


def int8_unsupported() -> str | None:
    """Why this onnxruntime cannot run the int8 models, or None when it can."""
    import onnxruntime as ort

    if tuple(int(part) for part in ort.__version__.split("+")[0].split(".")[:2]) >= INT8_ONNXRUNTIME:
        return None
    needed = ".".join(map(str, INT8_ONNXRUNTIME))
    return f"onnxruntime {ort.__version__} cannot run the int8 model (ConvInteger on int8 weights: {needed} or newer)"


def session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session; ``threads`` caps intra-op threads (None: all cores). A file
    that is not a regular file, or that onnxruntime cannot load, is one DataError naming it."""
    import onnxruntime as ort

    regular_file(path, "ONNX model")

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types for files it cannot read
        why = int8_unsupported() if type(err).__name__ == "NotImplemented" else None
        hint = f"; {why}" if why else ""
        raise DataError(f"{path}: not an ONNX model onnxruntime can load ({type(err).__name__}){hint}") from err


@dataclass
class Run:
    """What a run folder holds for scoring: preprocessing, class names, an ONNX session."""

    folder: Path
    preprocessor: Preprocessor
    model_path: Path
    session: object
    novelty: Novelty | None = None  # the calibrated unknown flag, when the run has novelty.json
    density: BenignDensity | None = None  # the benign density, when the run has density.json

    @property
    def class_names(self) -> list[str]:
        return self.preprocessor.class_names

    @property
    def spec(self) -> DatasetSpec:
        """The spec of the dataset the run was trained on: how to read and label its files."""
        return get_spec(self.preprocessor.dataset)

    def score(self, features: np.ndarray | WindowedRows, batch_rows: int = 1024) -> np.ndarray:
        """Scores in slices of ``batch_rows``: the model's working memory stays the same
        whatever the size of ``features`` (windows are gathered a slice at a time)."""
        parts = [
            self.session.run(None, {"features": np.ascontiguousarray(features[i : i + batch_rows], dtype=np.float32)})[
                0
            ]
            for i in range(0, len(features), batch_rows)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.class_names)), dtype=np.float32)


def load_run(folder: str | Path, model: str = "model.onnx", threads: int | None = None) -> Run:
    """Open ``folder``; refuse files that do not fit together, with a message that says how."""
    folder = Path(folder)
    if Path(model).name != model:
        raise ConfigError(f"--model names a model file of the run folder (model.onnx, model.int8.onnx), not {model!r}")
    for name in ("preprocess.json", model):
        if not (folder / name).exists():
            raise DataError(f"{folder}: no {name}; is this a run folder of a finished training run?")
        regular_file(folder / name, name)
    preprocessor = Preprocessor.load(folder / "preprocess.json")
    ort = session(folder / model, threads)
    inputs, outputs = ort.get_inputs(), ort.get_outputs()
    if [i.name for i in inputs] != ["features"] or [o.name for o in outputs] != ["probabilities"]:
        raise DataError(f"{folder / model}: expected input 'features' and output 'probabilities'")
    if inputs[0].type != "tensor(float)" or outputs[0].type != "tensor(float)":
        raise DataError(
            f"{folder / model}: takes {inputs[0].type} and gives {outputs[0].type}; a detector's model takes "
            "and gives float32 (probabilities, not class numbers)"
        )
    shape, classes = tuple(inputs[0].shape[1:]), outputs[0].shape[1]
    if shape != preprocessor.input_shape:
        raise DataError(
            f"{folder}: {model} takes inputs of shape {list(shape)} but preprocess.json makes "
            f"{list(preprocessor.input_shape)} (features, or window x features + presence)"
        )
    if isinstance(classes, int) and classes != len(preprocessor.class_names):
        raise DataError(
            f"{folder}: {model} scores {classes} classes but preprocess.json names "
            f"{len(preprocessor.class_names)}: {preprocessor.class_names}"
        )
    written = ort.get_modelmeta().custom_metadata_map.get(CLASS_NAMES_KEY)
    if written is not None and json.loads(written) != preprocessor.class_names:
        raise DataError(
            f"{folder}: {model} scores the classes {json.loads(written)} but preprocess.json names "
            f"{preprocessor.class_names}: the two files come from different runs"
        )
    flag = folder / "novelty.json"  # a folder or a link to nothing there is an error, not "no flag"
    novelty = Novelty.load(flag) if os.path.lexists(flag) else None
    benign = folder / DENSITY_FILE
    density = BenignDensity.load(benign, preprocessor.num_features) if os.path.lexists(benign) else None
    return Run(folder, preprocessor, folder / model, ort, novelty, density)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
