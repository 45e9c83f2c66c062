"""ONNX deployment of a trained net: export (fp32 and int8), verified on real rows.

A run exports as its step after the fit (:func:`export_best`, options in ``export.*``), and
``ids export RUN_DIR`` re-exports a finished run. The run folder gets ``model.onnx`` (input
``features [batch, num_features]``, output ``probabilities [batch, num_classes]``, dynamic
batch axis, opset pinned), ``model.int8.onnx``
and ``bench_rows.npy`` / ``bench_labels.npy`` (preprocessed real test rows for the edge
benchmark). With ``preprocess.json`` (which holds the class names) the folder alone is enough to
score new data. Nothing is assumed: onnxruntime and torch outputs are compared on test rows at
several batch sizes, and the results go to ``metrics.json`` under ``onnx/``.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ids_lightning.core import provenance
from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import atomic_path, output_folder, regular_file
from ids_lightning.edge.runtime import CLASS_NAMES_KEY, session
from ids_lightning.models.batches import Features
from ids_lightning.models.nets import to_probabilities

log = logging.getLogger(__name__)

OPSET = 17
CHECK_BATCH_SIZES = (1, 7, 64, 1000)
# float32 probabilities after up to 41 recurrent steps: kernels of torch and onnxruntime sum in
# different orders; 1e-3 is far below anything that moves a decision at normal margins.
PARITY_TOLERANCE = 1e-3
INT8_MAX_VAL_LOSS = 0.005  # half a point of validation accuracy


@dataclass
class ExportOptions:
    """The export settings and their one set of defaults (``export.*`` in the training config,
    where Hydra reads them from this class)."""

    verify_rows: int = 4096  # test rows on which onnxruntime must match torch
    calibration_rows: int = 1024  # training rows that calibrate static int8
    bench_rows: int = 4096  # preprocessed test rows saved for the edge bench
    quantize: bool = True  # also write model.int8.onnx (chosen on validation)


class ProbabilityHead(nn.Module):
    """Net plus the module's own logits-to-probabilities step, so ONNX outputs probabilities."""

    def __init__(self, net: nn.Module, binary: bool):
        super().__init__()
        self.net, self.binary = net, binary

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return to_probabilities(self.net(features), self.binary)


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: Path, class_names: list[str]) -> None:
    """TorchScript-based exporter: it keeps the batch axis of (bi)LSTMs dynamic, which the
    dynamo exporter of torch 2.13 fixes to the example's batch size. ``input_shape`` is one
    input without the batch axis (``Preprocessor.input_shape``: a flow, or a window of flows
    with the presence channel). The class names go into the model's metadata
    (``CLASS_NAMES_KEY``), so a detector can refuse a ``preprocess.json`` whose classes are
    not the model's, in order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, *input_shape),),
            str(path),
            input_names=["features"],
            output_names=["probabilities"],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}},
        )
    exported = onnx.load(str(path))
    onnx.helper.set_model_props(exported, {CLASS_NAMES_KEY: json.dumps(list(class_names))})
    onnx.save(exported, str(path))


def export_run(
    model: nn.Module, tensors: dict, output_dir: Path, class_names: list[str], options: ExportOptions | None = None
) -> dict:
    """Write ``model.onnx`` (verified), the bench rows and ``model.int8.onnx``; return the
    ``onnx/*`` facts for ``metrics.json``."""
    options = options or ExportOptions()
    output_folder(output_dir)
    fp32 = output_dir / "model.onnx"
    with atomic_path(fp32) as tmp:
        export_onnx(model, tuple(tensors["test"][0].shape[1:]), tmp, class_names)
    summary = _verify(model, fp32, tensors["test"], options.verify_rows)
    for name, values in (("bench_rows", tensors["test"][0]), ("bench_labels", tensors["test"][1])):
        with atomic_path(output_dir / f"{name}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, values[: options.bench_rows].numpy())
    if options.quantize:
        summary |= _quantize(fp32, tensors, output_dir, options.calibration_rows)
    for model_file in (fp32, output_dir / "model.int8.onnx"):
        if model_file.is_file():
            stamp_provenance(model_file, output_dir)
    log.info(describe(summary, output_dir))
    return summary


def stamp_provenance(path: Path, folder: Path) -> None:
    """``folder``'s provenance (version, commit, config and data hashes) in the metadata of the
    ONNX model ``path``, beside what the metadata holds: the detector names them in every alert."""
    entries = provenance.onnx_metadata(provenance.read(folder))
    if not entries:
        return
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {p.key: p.value for p in model.metadata_props} | entries)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def export_best(module, datamodule, best: str, output_dir: Path, options: ExportOptions) -> dict:
    """The run's export step: ``module``'s net with the weights of checkpoint ``best`` (its own
    final weights if empty), exported, verified and quantised into ``output_dir``."""
    net = copy.deepcopy(module.net).cpu()
    if best:
        load_net_weights(net, Path(best))
    else:
        log.warning("no best checkpoint: exporting the final weights")
    return export_net(net, datamodule, output_dir, options)


def export_net(net: nn.Module, datamodule, output_dir: Path, options: ExportOptions) -> dict:
    """Export a CPU ``net`` with the probability head of its datamodule's classes, verified on
    its test rows and int8-calibrated on its training rows (a run's export step, a re-export)."""
    tensors = {stage: (x.cpu(), y.cpu()) for stage, (x, y) in datamodule.tensors.items()}
    head = ProbabilityHead(net.eval(), datamodule.num_classes == 2).eval()
    return export_run(head, tensors, output_dir, datamodule.class_names, options)


def export_options(node) -> ExportOptions | None:
    """``export.*`` of a composed config as options; None where the export is switched off."""
    return None if node is None else ExportOptions(**{k: node[k] for k in asdict(ExportOptions())})


def describe(summary: dict, output_dir: Path) -> str:
    """The export in one line: files, sizes, parity with torch, and the int8 choice."""
    text = (
        f"ONNX export: {output_dir / 'model.onnx'} ({summary['onnx/fp32_bytes'] / 1024:.0f} KB), max |onnx - torch| "
        f"{summary['onnx/max_abs_diff']:.1e} on {summary['onnx/verify_rows']:,} test rows "
        f"({'parity ok' if summary['onnx/parity_ok'] else 'PARITY FAILED'})"
    )
    if "onnx/int8_method" in summary:
        change = 100 * (summary[f"onnx/int8_val_acc/{summary['onnx/int8_method']}"] - summary["onnx/fp32_val_acc"])
        text += (
            f"; model.int8.onnx ({summary['onnx/int8_bytes'] / 1024:.0f} KB, {summary['onnx/int8_method']}, "
            f"validation accuracy {change:+.2f} points vs fp32)"
        )
    return text


def _verify(model: nn.Module, path: Path, test: tuple[torch.Tensor, torch.Tensor], verify_rows: int) -> dict:
    x = test[0][:verify_rows]
    ort = session(path)
    with torch.no_grad():
        expected = model(x).numpy()
    got = np.concatenate([ort.run(None, {"features": chunk.numpy()})[0] for chunk in _chunks(x, 1000)])
    # The same rows at other batch sizes: an exporter that fixed the batch axis fails here.
    diff = float(np.abs(got - expected).max())
    for batch in CHECK_BATCH_SIZES:
        rows = x[:batch].numpy()
        diff = max(diff, float(np.abs(ort.run(None, {"features": rows})[0] - expected[: len(rows)]).max()))
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    summary = {
        "onnx/opset": OPSET,
        "onnx/verify_rows": len(x),
        "onnx/batch_sizes_checked": list(CHECK_BATCH_SIZES),
        "onnx/max_abs_diff": diff,
        "onnx/argmax_agreement": agreement,
        "onnx/argmax_identical": agreement == 1.0,
        "onnx/parity_ok": diff <= PARITY_TOLERANCE,
        "onnx/fp32_test_acc": _accuracy(ort, *test),
        "onnx/fp32_bytes": path.stat().st_size,
    }
    if not summary["onnx/parity_ok"] or agreement < 1.0:
        log.warning("ONNX and torch disagree beyond %g: %s", PARITY_TOLERANCE, summary)
    return summary


def _quantize(fp32: Path, tensors: dict, output_dir: Path, calibration_rows: int) -> dict:
    """Dynamic and static (calibrated on training rows) int8. Chosen on the validation split,
    never the test set: the smallest file that loses at most ``INT8_MAX_VAL_LOSS`` of
    validation accuracy against fp32, else the most accurate one."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    # candidates in a fresh folder of their own: nothing planted in the run folder is written through
    with tempfile.TemporaryDirectory(prefix=".int8-", dir=output_dir) as work:
        candidates = {"dynamic": Path(work) / "dynamic.onnx", "static": Path(work) / "static.onnx"}
        quantize_dynamic(str(fp32), str(candidates["dynamic"]), weight_type=QuantType.QInt8)
        rows = tensors["train"][0]
        pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[:calibration_rows]
        batches = [{"features": b.numpy()} for b in rows[pick].split(64)]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter(batches)

            def get_next(self):
                return next(self.batches, None)

        try:
            quantize_static(
                str(fp32),
                str(candidates["static"]),
                Reader(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        except Exception as err:
            log.warning("static int8 quantisation failed, keeping dynamic: %s", err)
            candidates.pop("static")
        fp32_val = _accuracy(session(fp32), *tensors["val"])
        val_acc = {name: _accuracy(session(path), *tensors["val"]) for name, path in candidates.items()}
        good = [name for name in candidates if val_acc[name] >= fp32_val - INT8_MAX_VAL_LOSS]
        chosen = min(good, key=lambda n: candidates[n].stat().st_size) if good else max(val_acc, key=val_acc.get)
        target = output_dir / "model.int8.onnx"
        candidates[chosen].replace(target)  # replaces a link of that name, never writes through it
    return {
        "onnx/int8_method": chosen,
        "onnx/fp32_val_acc": fp32_val,
        **{f"onnx/int8_val_acc/{name}": acc for name, acc in val_acc.items()},
        "onnx/int8_test_acc": _accuracy(session(target), *tensors["test"]),
        "onnx/int8_bytes": target.stat().st_size,
    }


def load_net_weights(net: nn.Module, checkpoint: Path) -> nn.Module:
    """The ``net.*`` weights of a Lightning checkpoint (loaded with ``weights_only=True``); a file
    that does not load, or whose weights do not fit the net, is one DataError naming it."""
    regular_file(checkpoint, "checkpoint")  # a FIFO named like a checkpoint would block the load
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
        net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    except FileNotFoundError as err:
        raise DataError(f"{checkpoint}: no such checkpoint") from err
    except Exception as err:  # truncated, foreign or pickled files, missing or misshapen weights
        raise DataError(f"{checkpoint}: not a checkpoint of this net ({type(err).__name__}: {err})") from err
    return net


def _chunks(x: Features, size: int) -> Iterator[torch.Tensor]:
    """Consecutive model inputs of a split, ``size`` at a time (windows gathered per chunk)."""
    for start in range(0, len(x), size):
        yield x[start : start + size]


def _accuracy(ort, x: Features, y: torch.Tensor) -> float:
    predictions = np.concatenate([ort.run(None, {"features": c.numpy()})[0].argmax(1) for c in _chunks(x, 4096)])
    return float((predictions == y.numpy()).mean())
