"""Training throughput of the project's paths on the current device, plus the seed protocol end to end.

``python -m ids_lightning.bench.train`` measures, with the same net (the seed paper's CNN-LSTM)
on the same real NSL-KDD rows, samples/s of

- ``project``: this project's path (device-resident splits, chunks of index-slice steps,
  manual optimization; CUDA-graph replays on GPUs),
- ``lightning_dataloader``: a textbook LightningModule fed by ``DataLoader(TensorDataset)``,
- ``hand_loop``: a hand-written PyTorch loop over device-resident tensors,
- ``batched_seeds``: the project's path training ``--seeds`` seeds together (samples of every
  seed counted; ``vs_one_seed_time``: its time per step over the ``project`` path's),
- ``adversarial_pgd``: the project's path with PGD-3 adversarial training on half of each
  batch (``vs_project``: its speed over the plain path's),

at each batch size (the median of ``--repeats`` interleaved measurements), then times
``experiment=seed_protocol`` (50 epochs, batch 64, validation every epoch) through ``train.py``,
for one seed and for ``--seeds`` seeds trained together (``seeds=[...]``).
Prints a table and writes ``outputs/bench/train.json``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, TensorDataset

from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.data import flow_datamodule
from ids_lightning.models import CNNLSTM, FTTransformer, IDSLitModule, TabM
from ids_lightning.models.batches import InMemoryBatches
from ids_lightning.models.replicas import ReplicaLitModule
from ids_lightning.models.tabular import member_logits
from ids_lightning.training.config import PROJECT_ROOT, compose, instantiate
from ids_lightning.training.run import device_name

SEEDS = 3  # seeds of the batched_seeds path (--seeds)
PGD = {"method": "pgd", "eps": 0.1, "ratio": 0.5, "steps": 3}

log = logging.getLogger(__name__)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(L.Callback):
    """Times the training batches after the first ``warmup`` ones (chunks or plain batches)."""

    def __init__(self, warmup: int):
        self.warmup, self.rows, self.started, self.seconds = warmup, 0, None, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            _sync(pl_module.device)
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.started is not None:
            self.rows += len(batch) if not isinstance(batch, (list, tuple)) else len(batch[1])

    def on_train_end(self, trainer, pl_module):
        _sync(pl_module.device)
        self.seconds = time.perf_counter() - self.started


class TextbookModule(L.LightningModule):
    """What a typical Lightning user writes: automatic optimization, a loss logged every step."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def bare_trainer(**options) -> L.Trainer:
    """A Lightning trainer that only trains: no logger, checkpoints, bar or summary (what the
    measurements here and the fast path's tests time and compare)."""
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    return L.Trainer(devices=1, enable_model_summary=False, **quiet, **options)


def _trainer(device: torch.device, batches: int, timer: StepTimer) -> L.Trainer:
    accelerator = device.type if device.type == "cpu" else "gpu"
    return bare_trainer(
        accelerator=accelerator, max_epochs=1, limit_train_batches=batches, limit_val_batches=0, callbacks=[timer]
    )


def _module(x, class_names, device, window=1, **options) -> IDSLitModule:
    net = CNNLSTM(x.shape[-1] - (window > 1), len(class_names), window=window)
    return IDSLitModule(net, torch.optim.Adam, class_names, cuda_graph=device.type == "cuda", **options)


def _fit_chunks(module, x, y, batch, steps, device, steps_per_chunk=16, seed: int | list[int] = 0) -> float:
    warmup = 2
    timer = StepTimer(warmup)
    chunks = warmup + max(1, steps // steps_per_chunk)
    batches = InMemoryBatches(
        x.to(device), y.to(device), batch, shuffle=True, seed=seed, steps_per_chunk=steps_per_chunk
    )
    _trainer(device, chunks, timer).fit(module, train_dataloaders=batches)
    return timer.rows / timer.seconds


def bench_project(x, y, batch, steps, device, class_names, steps_per_chunk=16, window=1) -> float:
    module = _module(x, class_names, device, window)
    return _fit_chunks(module, x, y, batch, steps, device, steps_per_chunk)


def bench_adversarial_pgd(x, y, batch, steps, device, class_names) -> float:
    return _fit_chunks(_module(x, class_names, device, adversarial=PGD), x, y, batch, steps, device)


def bench_batched_seeds(x, y, batch, steps, device, class_names, seeds: int = SEEDS) -> float:
    """``seeds`` seeds in one step; samples/s counts the rows of every seed."""
    seeds = list(range(seeds))
    with tempfile.TemporaryDirectory() as folder:  # the members' fit records land here
        members = []
        for seed in seeds:
            torch.manual_seed(seed)
            members.append(_module(x, class_names, device))
        folders = [Path(folder) / str(seed) for seed in seeds]
        selection = [L.pytorch.callbacks.ModelCheckpoint(dirpath=f) for f in folders]
        states = [torch.get_rng_state()] * len(seeds)
        module = ReplicaLitModule(members, seeds, folders, selection, [None] * len(seeds), states)
        return _fit_chunks(module, x, y, batch, steps, device, seed=seeds)


def bench_lightning_dataloader(x, y, batch, steps, device, class_names) -> float:
    module = TextbookModule(CNNLSTM(x.shape[1], len(class_names)))
    loader = DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=batch, shuffle=True)
    warmup = 10
    timer = StepTimer(warmup)
    _trainer(device, warmup + steps, timer).fit(module, train_dataloaders=loader)
    return timer.rows / timer.seconds


def bench_hand_loop(x, y, batch, steps, device, class_names) -> float:
    return _hand_loop(CNNLSTM(x.shape[1], len(class_names)), x, y, batch, steps, device, torch.optim.Adam)


PATHS = {
    "project": bench_project,
    "lightning_dataloader": bench_lightning_dataloader,
    "hand_loop": bench_hand_loop,
    "batched_seeds": bench_batched_seeds,
    "adversarial_pgd": bench_adversarial_pgd,
}
BASELINES = ("project", "lightning_dataloader", "hand_loop")


TABULAR = {  # the tournament's CPU configurations (docs/protocols.md)
    "tabm": lambda features, classes: TabM(features, classes, k=32, blocks=2, width=256),
    "ft_transformer": lambda features, classes: FTTransformer(features, classes, d_token=64, layers=2),
}


def bench_tabular(batches: list[int], rows: int, repeats: int, device, x, y, class_names) -> list[dict]:
    """TabM and FT-Transformer on the project's path (device-resident batches, chunks of steps,
    CUDA-graph replays on GPUs) beside a hand-written loop with the same per-member loss; the
    median of ``repeats`` interleaved measurements per batch size."""
    results = []
    for name, make in TABULAR.items():
        for batch in batches:
            steps = max(20, rows // batch)
            measured = {"project": [], "hand_loop": []}
            for _ in range(repeats):
                L.seed_everything(0, verbose=False)
                module = IDSLitModule(make(x.shape[1], len(class_names)), torch.optim.AdamW, class_names,
                                      cuda_graph=device.type == "cuda")  # fmt: skip
                measured["project"].append(_fit_chunks(module, x, y, batch, steps, device))
                L.seed_everything(0, verbose=False)
                measured["hand_loop"].append(_hand_loop(make(x.shape[1], len(class_names)), x, y, batch, steps, device))
            speeds = {path: statistics.median(values) for path, values in measured.items()}
            for path, values in measured.items():
                results.append({"device": device_name(device), "path": f"{path}_{name}", "batch": batch,
                                "samples_per_s": round(speeds[path], 1), "repeats": [round(v, 1) for v in values],
                                **({"vs_hand_loop": round(speeds[path] / speeds["hand_loop"], 3)}
                                   if path == "project" else {})})  # fmt: skip
    return results


def _hand_loop(net: torch.nn.Module, x, y, batch: int, steps: int, device, optimizer=torch.optim.AdamW) -> float:
    """A hand-written loop over device-resident tensors (an ensemble's members each on its own
    loss; one member for the other nets)."""
    net = net.to(device)
    optimizer = optimizer(net.parameters(), lr=1e-3)
    x, y = x.to(device), y.to(device)
    order = torch.randperm(len(x), device=device)
    warmup, rows = 10, 0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        start = (step * batch) % max(1, len(x) - batch)
        index = order[start : start + batch]
        optimizer.zero_grad()
        members = member_logits(net, x[index])
        F.cross_entropy(members.flatten(0, 1), y[index].repeat_interleave(members.shape[1])).backward()
        optimizer.step()
        rows += len(index) if step >= warmup else 0
    _sync(device)
    return rows / (time.perf_counter() - started)


def bench_seed_protocol(device: torch.device, data_dir: str, out_dir: Path, epochs: int, seeds: int = 1) -> dict:
    """``experiment=seed_protocol`` through ``train.py``: one seed, or ``seeds`` seeds trained
    together (``seeds=[1,...]``; its ``test/acc`` is their mean)."""
    from ids_lightning.launch import launch

    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = out_dir / f"seed_protocol_{stamp}" if seeds == 1 else out_dir / f"seed_protocol_{seeds}_seeds_{stamp}"
    overrides = [
        *([f"seeds=[{','.join(str(s) for s in range(1, seeds + 1))}]"] if seeds > 1 else []),
        "experiment=seed_protocol",
        f"trainer.max_epochs={epochs}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "callbacks.progress_bar=null",
        f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
        f"model.cuda_graph={device.type == 'cuda'}",
    ]
    started = time.perf_counter()
    metrics = launch(compose(overrides, run_dir, data_dir=data_dir))
    return {
        "path": "seed_protocol",
        "seeds": seeds,
        "batch": 64,
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 2),
        "fit_seconds": metrics["fit_seconds"],
        "test/acc": metrics["test/acc"],
        "run_dir": str(run_dir),
    }


def bench_windows(windows: list[int], batches: list[int], rows: int, repeats: int, device, data_dir: str) -> list[dict]:
    """The project's path with IoT-23 windows of each size (CNN-LSTM over the window), sizes
    measured in turn; ``vs_window_1`` is the ratio to one-flow samples on the same captures."""
    splits = {}
    for window in windows:
        cfg = compose(["dataset=iot23", f"dataset.window={window}"], "unused", data_dir=data_dir)
        datamodule = instantiate(cfg.dataset, output_dir=None)
        datamodule.setup()
        splits[window] = (*datamodule.tensors["train"], datamodule.class_names)
    results = []
    for batch in batches:
        measured = {window: [] for window in windows}
        for _ in range(repeats):
            for window, (x, y, class_names) in splits.items():
                L.seed_everything(0, verbose=False)
                # the timed steps must fit in one epoch of the captures, after 2 warm-up chunks
                per_epoch = -(-len(y) // batch)
                per_chunk = max(1, min(16, per_epoch // 8))
                steps = min(max(20, rows // batch), (per_epoch // per_chunk - 2) * per_chunk)
                measured[window].append(
                    bench_project(x, y, batch, steps, device, class_names, steps_per_chunk=per_chunk, window=window)
                )
        speeds = {window: statistics.median(values) for window, values in measured.items()}
        for window, values in measured.items():
            row = {
                "device": device_name(device),
                "path": "windowed",
                "window": window,
                "batch": batch,
                "samples_per_s": round(speeds[window], 1),
                "repeats": [round(v, 1) for v in values],
            }
            if 1 in speeds:
                row["vs_window_1"] = round(speeds[window] / speeds[1], 3)
            results.append(row)
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[64, 512, 1024], help="batch sizes (default: %(default)s)"
    )
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds trained together (default: %(default)s)")
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help="timed samples per measurement (default: 25,600 on CPU, 409,600 on GPU)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="measurements per path, taken in turn (paths interleaved); the median is reported",
    )
    parser.add_argument("--seed-epochs", type=int, default=50, help="0 skips the seed-protocol run")
    parser.add_argument(
        "--windows",
        type=int,
        nargs="*",
        default=[1, 32],
        help="IoT-23 window sizes for the windowed rows (none skips them; default: %(default)s)",
    )
    parser.add_argument(
        "--no-tabular", action="store_true", help="skip the TabM and FT-Transformer rows (project path vs hand loop)"
    )
    parser.add_argument("--data-dir", default=os.environ.get("IDS_DATA_DIR", "data"), help="data root")
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "train.json", help="JSON file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = device_name(device)
    rows_per_run = args.rows or (204_800 if device.type == "cuda" else 25_600)
    datamodule = flow_datamodule(
        spec="nsl_kdd", data_dir=args.data_dir, files=["nsl_kdd/KDDTrain+.txt"], task="family", split="random"
    )
    datamodule.setup()
    x, y = datamodule.tensors["train"]
    results = []
    for batch in args.batches:
        steps = max(20, rows_per_run // batch)
        paths = dict(PATHS, batched_seeds=functools.partial(bench_batched_seeds, seeds=args.seeds))
        measured = {path: [] for path in paths}
        for _ in range(args.repeats):  # in turn, so that a slow moment of a shared machine hits every path
            for path, run in paths.items():
                L.seed_everything(0, verbose=False)
                measured[path].append(run(x, y, batch, steps, device, datamodule.class_names))
        speeds = {path: statistics.median(values) for path, values in measured.items()}
        for path, values in measured.items():
            results.append(
                {
                    "device": name,
                    "path": path,
                    "batch": batch,
                    "samples_per_s": round(speeds[path], 1),
                    "repeats": [round(v, 1) for v in values],
                }
            )
        for row in results[-len(PATHS) :]:
            if row["path"] in BASELINES:
                row["vs_hand_loop"] = round(row["samples_per_s"] / speeds["hand_loop"], 3)
                row["vs_lightning_dataloader"] = round(row["samples_per_s"] / speeds["lightning_dataloader"], 3)
            elif row["path"] == "batched_seeds":
                row["seeds"] = args.seeds
                row["vs_one_seed_time"] = round(args.seeds * speeds["project"] / row["samples_per_s"], 3)
            else:
                row["vs_project"] = round(row["samples_per_s"] / speeds["project"], 3)
    if not args.no_tabular:
        results += bench_tabular(args.batches, rows_per_run, args.repeats, device, x, y, datamodule.class_names)
    if args.windows:
        results += bench_windows(args.windows, args.batches, rows_per_run, args.repeats, device, args.data_dir)
    if args.seed_epochs:
        one = bench_seed_protocol(device, args.data_dir, args.output.parent, args.seed_epochs)
        results.append({"device": name, **one})
        if args.seeds > 1:
            batched = bench_seed_protocol(device, args.data_dir, args.output.parent, args.seed_epochs, args.seeds)
            results.append({"device": name, **batched, "vs_one_seed": round(batched["seconds"] / one["seconds"], 3)})
    atomic_write_json(args.output, results)
    _print(results, args.output)
    return results


def _print(results: list[dict], output: Path) -> None:
    table = Table(title=f"Training throughput — {results[0]['device']}")
    for column in ("path", "batch", "samples/s", "compared"):
        table.add_column(column, justify="left" if column in ("path", "compared") else "right")
    for row in results:
        if row["path"] in ("seed_protocol", "windowed"):
            continue
        if "vs_lightning_dataloader" in row:
            compared = (
                f"{row['vs_hand_loop']:.2f}× hand loop, {row['vs_lightning_dataloader']:.2f}× Lightning+DataLoader"
            )
        elif "vs_hand_loop" in row:  # a tabular net on the project's path
            compared = f"{row['vs_hand_loop']:.2f}× its hand loop (the same per-member loss)"
        elif row["path"].startswith("hand_loop_"):
            compared = "–"
        elif "vs_one_seed_time" in row:
            compared = f"{row['seeds']} seeds in {row['vs_one_seed_time']:.2f}× one seed's time"
        else:
            compared = f"{row['vs_project']:.2f}× the plain project step"
        table.add_row(row["path"], str(row["batch"]), f"{row['samples_per_s']:,.0f}", compared)
    console = Console()
    console.print(table)
    windowed = [row for row in results if row["path"] == "windowed"]
    if windowed:
        table = Table(title="Windowed training (IoT-23, CNN-LSTM over each host's last flows)")
        for column in ("window", "batch", "samples/s", "× window 1"):
            table.add_column(column, justify="right")
        for row in windowed:
            ratio = row.get("vs_window_1")
            table.add_row(
                str(row["window"]),
                str(row["batch"]),
                f"{row['samples_per_s']:,.0f}",
                "–" if ratio is None else f"{ratio:.2f}",
            )
        console.print(table)
    for row in results:
        if row["path"] == "seed_protocol":
            together = f"{row['seeds']} seeds together" if row["seeds"] > 1 else "one seed"
            console.print(
                f"seed protocol, {together} ({row['epochs']} epochs, batch 64, validation every epoch): "
                f"{row['seconds']:.1f} s end to end, fit {row['fit_seconds']:.1f} s, test/acc {row['test/acc']:.4f}"
                + (f", {row['vs_one_seed']:.2f}× one seed's time" if "vs_one_seed" in row else "")
            )
    console.print(f"written to {output}")


if __name__ == "__main__":
    sys.exit(exit_status(main))
