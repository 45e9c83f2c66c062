"""The probes' shared material: the outcome classes, the probe, the lab of real rows and run
folders, and the counting helpers."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.training.config import QUIET, compose

OUTCOMES = ("clear_error", "counted_skip", "ok", "traceback", "silent_loss", "code_execution")
CLEAR = (DataError, ConfigError)
NSL_TEST = "nsl_kdd/KDDTest+.txt.gz"
NSL_TRAIN = "nsl_kdd/KDDTrain+.txt.gz"
ZEEK = "iot23/CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz"
IOT23_CSV = "iot23/csv_exports/CTU-IoT-Malware-Capture-44-1.labeled.csv.gz"
BOT_IOT = "bot_iot/bot_iot_reducedfeatures_normal_dos_recon_sample.csv.gz"


@dataclass
class Probe:
    name: str
    tool: str
    action: Callable[[Path], dict | None]  # returns {rows_in, rows_out, rows_skipped} when it ran
    refuse: bool  # the right answer is a clear error
    fast: bool = True  # needs no training


class Lab:
    """The shared material of the probes: real rows, and run folders built without training."""

    def __init__(self, root: Path, data_dir: Path):
        self.root, self.data = root, data_dir
        self.sentinel = root / "pwned"
        self._runs: dict[str, Path] = {}

    def lines(self, relative: str, count: int) -> list[str]:
        """The first ``count`` data lines of a real file (Zeek/CSV headers kept apart)."""
        with gzip.open(self.data / relative, "rt", encoding="utf-8", newline="") as handle:
            return [next(handle) for _ in range(count)]

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.root / "inputs" / f"{time.perf_counter_ns()}" / name
        path.parent.mkdir(parents=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def run(self, dataset: str, **dataset_overrides) -> Path:
        """A run folder (config.yaml, preprocess.json, checkpoint, model.onnx) of an untrained
        net: what the detector, export and attack read, in seconds."""
        if dataset in self._runs:
            return self._runs[dataset]
        import torch

        from ids_lightning.training.export import ProbabilityHead, export_onnx
        from ids_lightning.training.run_folder import build_datamodule, build_net

        folder = self.root / "runs" / dataset
        cfg = compose([f"dataset={dataset}", "model=lstm", *QUIET], folder, data_dir=self.data)
        config = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
        config["dataset"].update(dataset_overrides)
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        dm = build_datamodule(config, folder / "config.yaml", self.data)
        dm.setup()
        dm.preprocessor.save(folder / "preprocess.json")
        torch.manual_seed(0)
        net = build_net(config, folder, dm.preprocessor).eval()
        (folder / "checkpoints").mkdir()
        state = {f"net.{k}": v for k, v in net.state_dict().items()}
        torch.save({"state_dict": state}, folder / "checkpoints" / "epoch_000.ckpt")
        export_onnx(
            ProbabilityHead(net, dm.num_classes == 2).eval(),
            dm.preprocessor.input_shape,
            folder / "model.onnx",
            dm.class_names,
        )
        self._runs[dataset] = folder
        return folder

    def copy_run(self, dataset: str, change: Callable[[Path], None]) -> Path:
        source = self.run(dataset)
        target = self.root / "runs" / f"{dataset}-{time.perf_counter_ns()}"
        for path in source.rglob("*"):
            if path.is_file():
                (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                (target / path.relative_to(source)).write_bytes(path.read_bytes())
        change(target)
        return target


def classify(probe: Probe, lab: Lab) -> dict:
    lab.sentinel.unlink(missing_ok=True)
    row = {"probe": probe.name, "tool": probe.tool, "rows_in": 0, "rows_out": 0, "rows_skipped": 0, "detail": ""}
    try:
        counts = probe.action(lab.root) or {}
        row |= counts
        lost = row["rows_in"] != row["rows_out"] + row["rows_skipped"]
        if probe.refuse or lost:
            row["outcome"] = "silent_loss"
            row["detail"] = "accepted what it had to refuse" if probe.refuse else "rows went missing"
        else:
            row["outcome"] = "counted_skip" if row["rows_skipped"] else "ok"
    except SystemExit as err:
        row["outcome"] = "clear_error" if err.code not in (0, None) else "silent_loss"
        row["detail"] = f"exit {err.code}"
    except CLEAR as err:
        row["outcome"] = "clear_error"
        row["detail"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
    except Exception as err:
        row["outcome"] = "traceback"
        row["detail"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
    if lab.sentinel.exists():
        row["outcome"], row["detail"] = "code_execution", "the hostile input ran code"
    if not probe.refuse and row["outcome"] == "clear_error":
        row["detail"] = "refused a valid input: " + row["detail"]
        row["outcome"] = "silent_loss"
    row["detail"] = row["detail"].replace(str(lab.root), "<tmp>")
    return row


def detect_counts(lab: Lab, dataset: str, path: Path, records: int) -> dict:
    from ids_lightning.edge.detector import detect

    alerts = path.with_suffix(".jsonl")
    summary = detect(lab.run(dataset), path, alerts, progress=False)
    if "error" in summary:
        raise DataError(summary["error"])
    with open(alerts, encoding="utf-8") as handle:
        written = sum(1 for line in handle if json.loads(line))  # every line valid JSON
    return {"rows_in": records, "rows_out": written, "rows_skipped": summary["skipped"]}


def train_counts(metrics: dict, records: int) -> dict:
    """Rows in; rows used (every split) plus rows dropped as classes absent from training; skips."""
    used = sum(sum(counts.values()) for counts in metrics["class_counts"].values())
    dropped = sum(metrics["rows_dropped_unseen_class"].values())
    return {"rows_in": records, "rows_out": used + dropped, "rows_skipped": metrics["rows_skipped"]}


def _gz_root(lab: Lab, text: str) -> Path:
    root = lab.root / "data" / str(time.perf_counter_ns())
    (root / "nsl_kdd").mkdir(parents=True)
    (root / "nsl_kdd" / "KDDTrain+.txt.gz").write_bytes(gzip.compress(text.encode())[:-300])
    return root


# --- running -----------------------------------------------------------------------------------
