"""The probes' shared material and how a probe runs: the lab (real rows, run folders built
without training, a folder outside every probe's reach), the command a probe makes, and the
classification of what the command did, from its exit status, its output and the files around it.

Each probe runs its command as a user does (``python -m ids_lightning <command> ...`` in a
fresh process, in a folder of its own, under a time limit) and is classified:

- good: ``ok`` (every row used), ``counted_skip`` (every row used or counted as skipped),
  ``clear_error`` (status 2, or 3 for a detector input cut short, with a message that names
  what is at fault);
- bad: ``traceback``, ``crash`` (any other status), ``hang`` (past the time limit),
  ``silent_loss`` (rows missing, or a refusal it should have made, or a valid input refused),
  ``vague_error`` (a refusal that names neither the file nor the setting at fault),
  ``unsafe_output`` (an output that carries what it must not: a formula, a forged row),
  ``outside_write`` (a file outside the probe's folder changed), ``outside_read`` (a secret
  from outside the boundary reached the output), ``code_execution`` (hostile input ran code).
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ids_lightning.training.config import PROJECT_ROOT, QUIET, compose

GOOD = ("ok", "counted_skip", "clear_error")
BAD = (
    "traceback",
    "crash",
    "hang",
    "silent_loss",
    "vague_error",
    "unsafe_output",
    "outside_write",
    "outside_read",
    "code_execution",
)
OUTCOMES = GOOD + BAD
NSL_TEST = "nsl_kdd/KDDTest+.txt.gz"
NSL_TRAIN = "nsl_kdd/KDDTrain+.txt.gz"
ZEEK = "iot23/CTU-IoT-Malware-Capture-42-1.conn.log.labeled.gz"
ZEEK_OTHER = "iot23/CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz"
IOT23_CSV = "iot23/csv_exports/CTU-IoT-Malware-Capture-44-1.labeled.csv.gz"
BOT_IOT = "bot_iot/bot_iot_reducedfeatures_normal_dos_recon_sample.csv.gz"
# the IoT-23 columns with addresses and ports before ts and uid: ids and counts change places
SWAPPED = [2, 3, 0, 1, 4, 5, *range(6, 21)]
TIME_LIMIT = 120.0  # seconds: a probe past it hangs (the slowest, a short training, takes ~20 s)


@dataclass
class Call:
    """The command a probe runs and how to judge it.

    ``argv`` follows ``python -m ids_lightning`` (or ``python -m <module>`` when ``module`` is
    set). ``records`` rows go in; on status 0 ``count()`` says how many came out and how many
    were counted as skipped, and ``verify()`` returns what is wrong with the output, if anything.
    A refusal must name one of ``names`` (the file or setting at fault).
    """

    argv: list[str]
    records: int = 0
    count: Callable[[], dict] | None = None
    verify: Callable[[], str | None] | None = None
    names: tuple[str, ...] = ()
    stdin: Path | None = None
    module: str | None = None
    file_size_limit: int | None = None  # bytes: what a full disk looks like to the writer
    feed: tuple[Path, Path] | None = None  # (file, FIFO): a writer copies the file into the FIFO
    hold: Callable[[], AbstractContextManager] | None = None  # held around the command (a lock)


@dataclass
class Probe:
    name: str
    tool: str
    build: Callable[[Workspace], Call]
    refuse: bool  # the right answer is a clear error
    fast: bool = True  # needs no training


@dataclass
class Workspace:
    """One probe's folder (its working directory), its guarded folder (material outside its
    reach, such as another run's folder, which nothing may change) and the lab's shared material."""

    lab: Lab
    folder: Path
    guarded: Path

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.folder / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def copy_run(self, dataset: str, change: Callable[[Path], None] = lambda _: None) -> Path:
        """A copy of a lab run folder in this workspace, changed by ``change``."""
        source = self.lab.run(dataset)
        target = self.folder / "run"
        for path in source.rglob("*"):
            if path.is_file():
                (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                (target / path.relative_to(source)).write_bytes(path.read_bytes())
        change(target)
        return target


class Lab:
    """The shared material: real rows, run folders built without training (read-only for the
    probes), and ``outside/``, which no probe may change or read into its output."""

    def __init__(self, root: Path, data_dir: Path):
        self.root, self.data = root, data_dir
        self.sentinel = root / "outside" / "pwned"
        self.outside = root / "outside"
        self.outside.mkdir(parents=True)
        self.secret = secrets.token_hex(12)
        (self.outside / "secret.txt").write_text(self.secret + "\n")
        (self.outside / "victim.txt").write_text("a file outside that outputs link to\n")
        self.home = root / "home"  # HOME of every probe: caches (matplotlib) are shared, not checked
        self.home.mkdir()
        self._runs: dict[str, Path] = {}
        self._count = 0

    def lines(self, relative: str, count: int) -> list[str]:
        """The first ``count`` lines of a real file (headers included)."""
        with gzip.open(self.data / relative, "rt", encoding="utf-8", newline="") as handle:
            return [next(handle) for _ in range(count)]

    def zeek(self, count: int, relative: str = ZEEK) -> tuple[list[str], list[str]]:
        """A real Zeek log's header lines (without ``#close``) and its first ``count`` rows."""
        lines = self.lines(relative, count + 10)
        header = [x for x in lines if x.startswith("#") and not x.startswith("#close")]
        return header, [x for x in lines if not x.startswith("#")][:count]

    def run(self, dataset: str, **dataset_overrides) -> Path:
        """A run folder (config.yaml, preprocess.json, checkpoint, model.onnx, bench rows) of an
        untrained net: what the detector, export, attack and the edge bench read, in seconds."""
        if dataset in self._runs:
            return self._runs[dataset]
        import numpy as np
        import torch

        from ids_lightning.core.explain import reference_row, save_reference
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
        flows, labels = dm.tensors["train"]
        flows = flows.current_flows() if hasattr(flows, "current_flows") else flows
        benign = np.isin(labels.numpy(), [i for i, c in enumerate(dm.class_names) if dm.spec.is_benign(c)])
        save_reference(folder, reference_row(dm.preprocessor, flows.numpy()[benign]), int(benign.sum()))
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
        rows, labels = dm.tensors["test"]
        np.save(folder / "bench_rows.npy", rows[:256].numpy())
        np.save(folder / "bench_labels.npy", labels[:256].numpy())
        (folder / "metrics.json").write_text(json.dumps({"model": "lstm", "dataset": dataset, "seed": 1}))
        self._runs[dataset] = folder
        return folder

    def env(self) -> dict[str, str]:
        """The environment every probe's command runs in."""
        return os.environ | {
            "IDS_DATA_DIR": str(self.data),
            "HOME": str(self.home),
            "MPLCONFIGDIR": str(self.home / "matplotlib"),
            "IDS_CHAOS_SECRET": self.secret,  # what an interpolation in a run folder would copy out
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(PROJECT_ROOT),
        }

    def workspace(self) -> Workspace:
        self._count += 1
        folder, guarded = self.root / "probes" / f"{self._count:03d}", self.root / "guarded" / f"{self._count:03d}"
        folder.mkdir(parents=True)
        return Workspace(self, folder, guarded)


def reordered(lines: list[str], order: list[int] = SWAPPED) -> list[str]:
    """A Zeek log's lines with its tab-separated columns in ``order`` (#fields and #types too):
    what another Zeek configuration writes, joined after a log of the usual layout."""
    out = []
    for line in lines:
        if line.startswith("#") and not line.startswith(("#fields", "#types")):
            out.append(line)
            continue
        head = line.split("\t")[:1] if line.startswith("#") else []
        values = line.rstrip("\n").split("\t")[len(head) :]
        out.append("\t".join(head + [values[i] for i in order]) + "\n")
    return out


# --- running and judging -------------------------------------------------------------------------
def run_probe(probe: Probe, lab: Lab, workspace: Workspace) -> dict:
    """Build the probe's material, run its command in a fresh process, classify the outcome."""
    row = {"probe": probe.name, "tool": probe.tool, "rows_in": 0, "rows_out": 0, "rows_skipped": 0, "detail": ""}
    call = probe.build(workspace)
    row["rows_in"] = call.records
    before = _snapshot(lab, workspace)
    built = {path: path.stat().st_mtime_ns for path in workspace.folder.rglob("*") if path.is_file()}
    started = time.perf_counter()
    status, stdout, stderr = _execute(call, lab, workspace.folder)
    row["seconds"] = round(time.perf_counter() - started, 2)
    row["exit"] = status
    row |= judge(probe, call, status, stdout, stderr)
    row |= _boundary(lab, workspace, before, built, stdout + stderr)  # whatever the command answered
    row["detail"] = row["detail"].replace(str(workspace.folder), "<probe>").replace(str(lab.root), "<lab>")
    return row


def _execute(call: Call, lab: Lab, cwd: Path) -> tuple[int | None, str, str]:
    command = [sys.executable, "-m", call.module or "ids_lightning", *map(str, call.argv)]
    env = lab.env()

    def limits():
        if call.file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (call.file_size_limit, call.file_size_limit))

    with ExitStack() as stack:
        if call.hold:
            stack.enter_context(call.hold())
        stdin = stack.enter_context(open(call.stdin, "rb")) if call.stdin else subprocess.DEVNULL
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=limits,
        )  # fmt: skip
        if call.feed:
            writer = threading.Thread(target=_feed, args=call.feed, daemon=True)
            writer.start()
            stack.callback(_release, call.feed[1], writer)
        try:
            stdout, stderr = process.communicate(timeout=TIME_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return None, "", ""
    return process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")


def _release(fifo: Path, writer: threading.Thread) -> None:
    """A command that never opened the FIFO leaves its writer waiting: open it here."""
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    writer.join(10)


def _feed(source: Path, fifo: Path) -> None:
    try:
        with open(fifo, "wb") as out:
            out.write(source.read_bytes())
    except BrokenPipeError:  # the reader went away: what it did is judged, not the writer
        pass


def judge(probe: Probe, call: Call, status: int | None, stdout: str, stderr: str) -> dict:
    if status is None:
        return {"outcome": "hang", "detail": f"still running after {TIME_LIMIT:.0f} s"}
    if "Traceback (most recent call last)" in stderr:
        return {"outcome": "traceback", "detail": _last_line(stderr)}
    if status in (2, 3) and (stdout if status == 3 else stderr).strip():
        # status 3: the detector's input ended early; what it says is the summary's last line
        message = _last_line(stdout if status == 3 else stderr)
        if not probe.refuse:
            return {"outcome": "silent_loss", "detail": f"refused a valid input: {message}"}
        if call.names and not any(name in (stdout if status == 3 else stderr) for name in call.names):
            return {"outcome": "vague_error", "detail": f"names none of {list(call.names)}: {message}"}
        return {"outcome": "clear_error", "detail": message}
    if status != 0:
        return {"outcome": "crash", "detail": f"exit {status}: {_last_line(stderr or stdout)}"}
    counts = call.count() if call.count else {"rows_out": call.records, "rows_skipped": 0}
    if probe.refuse:
        return {**counts, "outcome": "silent_loss", "detail": "accepted what it had to refuse"}
    if call.records != counts["rows_out"] + counts["rows_skipped"]:
        return {**counts, "outcome": "silent_loss", "detail": "rows went missing"}
    problem = call.verify() if call.verify else None
    if problem:
        return {**counts, "outcome": "unsafe_output", "detail": problem}
    return {**counts, "outcome": "counted_skip" if counts["rows_skipped"] else "ok", "detail": ""}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _snapshot(lab: Lab, workspace: Workspace) -> dict[Path, tuple[int, int]]:
    """The files no probe may change, with size and time: ``outside/``, the lab's run folders and
    this probe's guarded folder (other probes' folders change as they run beside it)."""
    folders = (lab.outside, lab.root / "runs", workspace.guarded)
    return {
        path: (path.lstat().st_size, path.lstat().st_mtime_ns)
        for folder in folders
        for path in folder.rglob("*")
        if not path.is_dir() or path.is_symlink()
    }


def _boundary(lab: Lab, workspace: Workspace, before: dict, built: dict, printed: str) -> dict:
    if lab.sentinel.exists():
        lab.sentinel.unlink()
        return {"outcome": "code_execution", "detail": "the hostile input ran code"}
    after = _snapshot(lab, workspace)
    changed = sorted(
        str(path.relative_to(lab.root)) for path in set(before) | set(after) if before.get(path) != after.get(path)
    )
    if changed:
        return {"outcome": "outside_write", "detail": f"changed {changed[:3]}"}
    written = [
        path
        for path in workspace.folder.rglob("*")
        if path.is_file() and not path.is_symlink() and built.get(path) != path.stat().st_mtime_ns
    ]
    leaked = [str(path.relative_to(workspace.folder)) for path in written if lab.secret.encode() in path.read_bytes()]
    if lab.secret in printed or leaked:
        return {"outcome": "outside_read", "detail": f"a secret from outside reached {leaked or 'the output'}"}
    return {}


# --- counting what a command wrote ---------------------------------------------------------------
def detector_counts(alerts: Path) -> Callable[[], dict]:
    """Flows written (``--all``: one record each) and lines skipped, from the detector's output."""

    def count() -> dict:
        summary = json.loads(alerts.with_name(alerts.name + ".summary.json").read_text())
        with open(alerts, encoding="utf-8") as handle:  # every line valid JSON; incidents are no flows
            written = sum(1 for line in handle if json.loads(line)["event_type"] != "incident")
        return {"rows_out": written, "rows_skipped": summary["skipped"]}

    return count


def parquet_counts(folder: Path) -> Callable[[], dict]:
    """Rows written and rows skipped, from the Parquet files ``ids prepare`` wrote."""

    def count() -> dict:
        import pyarrow.parquet as pq

        rows = skipped = 0
        for path in folder.glob("*.parquet"):
            parquet = pq.ParquetFile(path)
            rows += parquet.metadata.num_rows
            skipped += len(json.loads(parquet.metadata.metadata[b"ids_lightning"])["skipped"])
        return {"rows_out": rows, "rows_skipped": skipped}

    return count


def train_counts(run: Path) -> Callable[[], dict]:
    """Rows used (every split) plus rows dropped as classes absent from training; skipped rows."""

    def count() -> dict:
        metrics = json.loads((run / "metrics.json").read_text())
        used = sum(sum(counts.values()) for counts in metrics["class_counts"].values())
        dropped = sum(metrics["rows_dropped_unseen_class"].values())
        return {"rows_out": used + dropped, "rows_skipped": metrics["rows_skipped"]}

    return count
