"""What tracking costs and what pruning saves (``make bench-tracking``, ``ids bench tracking``).

- ``--mlflow``: a seeds=[1,2,3] run of ``train.py`` (``--dataset``, ``--epochs``), each time a
  fresh process, with TensorBoard alone and with TensorBoard and MLflow (an embedded SQLite
  store), interleaved ``--repeats`` times; the wall-time ratio of the medians.
- ``--pruning``: the Optuna search of ``hparams_search=cnn_lstm_optuna`` (``--trials`` trials,
  ``--epochs`` epochs of ``--train-chunks`` chunks of training batches, validation on every
  validation row) without and with its pruner, for each of ``--repeats`` sampler seeds (the two
  searches of a seed propose the same random start-up trials); the epochs trained and the best
  validation macro-F1 of each.

- ``--profile``: one such run with MLflow under cProfile, into an existing store: the seconds
  inside MLflow's logger over the run's wall time (the interleaved wall times are noisy at several
  percent on this machine).

Writes ``outputs/bench/{mlflow_overhead,mlflow_profile,pruning}.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ids_lightning.core.errors import DataError, exit_status
from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.training.config import PROJECT_ROOT
from ids_lightning.training.run import device_name

log = logging.getLogger(__name__)
QUIET = ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null"]
LOGGERS = {"tensorboard": "logger=tensorboard", "tensorboard+mlflow": "logger=[tensorboard,mlflow]"}


def seeds_run(loggers: str, dataset: str, epochs: int, scratch: str, folder: Path, data_dir: str,
              python: tuple[str, ...] = ()) -> float:  # fmt: skip
    """Wall seconds of ``train.py seeds=[1,2,3]`` with ``loggers`` in a fresh process (``python``:
    the interpreter's own options, e.g. a profiler), its stores under ``scratch``."""
    command = [sys.executable, *python, str(PROJECT_ROOT / "train.py"), f"dataset={dataset}", "seeds=[1,2,3]",
               f"trainer.max_epochs={epochs}", LOGGERS[loggers], f"paths.log_dir={scratch}", f"hydra.run.dir={folder}",
               *QUIET]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "IDS_DATA_DIR": data_dir})
    if done.returncode:
        raise DataError(f"{loggers}: train.py failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def mlflow_overhead(dataset: str, epochs: int, repeats: int, data_dir: str) -> dict:
    """Wall seconds of the same seeds run with each logger setting, interleaved."""
    seconds: dict[str, list[float]] = {name: [] for name in LOGGERS}
    with tempfile.TemporaryDirectory(prefix="ids_bench_tracking_") as scratch:
        for repeat in range(repeats):
            order = list(LOGGERS) if repeat % 2 == 0 else list(reversed(LOGGERS))
            for name in order:
                folder = Path(scratch) / f"{name}_{repeat}"
                seconds[name].append(seeds_run(name, dataset, epochs, scratch, folder, data_dir))
                log.info("%s, repeat %d: %.1f s", name, repeat + 1, seconds[name][-1])
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "dataset": dataset,
        "epochs": epochs,
        "seeds": [1, 2, 3],
        "seconds": seconds,
        "median_seconds": medians,
        "mlflow_extra": medians["tensorboard+mlflow"] / medians["tensorboard"] - 1,
    }


def _mlflow_functions(stats: dict) -> set:
    """The profile's keys of the code that talks to MLflow: Lightning's MLflow logger and the
    run's own MLflow methods (not the epoch filter both loggers share)."""
    from ids_lightning.training.loggers import RunMLFlowLogger

    own = {
        (f.__code__.co_firstlineno, f.__name__)
        for f in (
            RunMLFlowLogger.__init__,
            RunMLFlowLogger.finalize,
            RunMLFlowLogger.join_group,
            RunMLFlowLogger.log_folder,
        )
    }
    return {key for key in stats if key[0].endswith("pytorch/loggers/mlflow.py")
            or (key[0].endswith("training/loggers.py") and key[1:] in own)}  # fmt: skip


def mlflow_profile(dataset: str, epochs: int, data_dir: str) -> dict:
    """One seeds run with TensorBoard and MLflow under cProfile, into a store that exists (as
    ``outputs/mlflow.db`` does after the first run): the seconds spent in MLflow's logger (every
    entry into it from other code, importing MLflow included) against the run's wall time, which
    interleaved wall times, noisy at several percent here, cannot resolve. The profiler slows
    Python-heavy code such as MLflow's more than the training's kernels: an upper bound."""
    import pstats

    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="ids_bench_tracking_") as scratch:
        MlflowClient(f"sqlite:///{scratch}/mlflow.db").search_experiments()  # the store's tables, made once
        profile = Path(scratch) / "run.prof"
        profiler = ("-m", "cProfile", "-o", str(profile))
        wall = seeds_run("tensorboard+mlflow", dataset, epochs, scratch, Path(scratch) / "run", data_dir, profiler)
        stats = pstats.Stats(str(profile)).stats  # key -> (calls, primitive, tottime, cumtime, {caller: (.., cumtime)})
    inside = _mlflow_functions(stats)
    calls = sum(timing[3] for key in inside for caller, timing in stats[key][4].items() if caller not in inside)
    return {"dataset": dataset, "epochs": epochs, "wall_seconds_profiled": wall, "mlflow_seconds": calls,
            "mlflow_share": calls / wall}  # fmt: skip


def pruning_saving(trials: int, epochs: int, train_chunks: int, repeats: int, data_dir: str) -> dict:
    """The NSL-KDD search without and with its pruner, per sampler seed."""
    from ids_lightning.training.search import search

    os.environ["IDS_DATA_DIR"] = data_dir
    rows = []
    with tempfile.TemporaryDirectory(prefix="ids_bench_pruning_") as scratch:
        for seed in range(1, repeats + 1):
            for pruner in ("none", "default"):  # no pruner, then the search config's
                overrides = ["hparams_search=cnn_lstm_optuna", "dataset=nsl_kdd", f"search.n_trials={trials}",
                             f"search.sampler_seed={seed}", f"search.study_name=bench_{pruner}_{seed}",
                             f"paths.log_dir={scratch}", f"trainer.max_epochs={epochs}",
                             f"+trainer.limit_train_batches={train_chunks}", "test=false", "export=none",
                             "logger=none", "callbacks=none", "trainer.enable_progress_bar=false"]  # fmt: skip
                if pruner == "none":
                    overrides.append("search.pruner.type=none")
                started = time.perf_counter()
                study = search(overrides)
                rows.append({
                    "sampler_seed": seed,
                    "pruner": study["pruner"],
                    "epochs_trained": study["epochs_trained"],
                    "best_value": study["best_value"],
                    "pruned_trials": sum(t["state"] == "PRUNED" for t in study["trials"]),
                    "seconds": time.perf_counter() - started,
                })  # fmt: skip
                log.info("seed %d, pruner %s: %s", seed, pruner, json.dumps(rows[-1]))
    pairs = [(rows[i], rows[i + 1]) for i in range(0, len(rows), 2)]
    return {
        "dataset": "nsl_kdd",
        "trials": trials,
        "max_epochs": epochs,
        "train_chunks_per_epoch": train_chunks,
        "searches": rows,
        "epochs_saved": [1 - pruned["epochs_trained"] / full["epochs_trained"] for full, pruned in pairs],
        "best_value_change": [pruned["best_value"] - full["best_value"] for full, pruned in pairs],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlflow", action="store_true", help="the MLflow overhead")
    parser.add_argument("--pruning", action="store_true", help="the pruner's saving")
    parser.add_argument("--profile", action="store_true", help="MLflow's share of one profiled run")
    parser.add_argument("--dataset", default="nsl_kdd")
    parser.add_argument("--epochs", type=int, default=3, help="MLflow: epochs of the seeds run")
    parser.add_argument("--search-epochs", type=int, default=8)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--train-chunks", type=int, default=10, help="chunks of 16 training batches per search epoch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("IDS_DATA_DIR", "data"))
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench", help="folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (args.mlflow or args.pruning or args.profile):
        args.mlflow = args.pruning = args.profile = True
    import torch

    machine = {"device": device_name(torch.device("cpu")), "load_at_start": os.getloadavg()[0]}
    result = {}
    if args.mlflow:
        result["mlflow"] = machine | mlflow_overhead(args.dataset, args.epochs, max(args.repeats, 3), args.data_dir)
        atomic_write_json(args.output / "mlflow_overhead.json", result["mlflow"])
        print(f"MLflow beside TensorBoard: {100 * result['mlflow']['mlflow_extra']:+.1f} % wall time")
    if args.profile:
        result["profile"] = machine | mlflow_profile(args.dataset, args.epochs, args.data_dir)
        atomic_write_json(args.output / "mlflow_profile.json", result["profile"])
        print(f"MLflow's calls: {100 * result['profile']['mlflow_share']:.1f} % of a profiled run")
    if args.pruning:
        result["pruning"] = machine | pruning_saving(args.trials, args.search_epochs, args.train_chunks, args.repeats,
                                                     args.data_dir)  # fmt: skip
        atomic_write_json(args.output / "pruning.json", result["pruning"])
        saved = ", ".join(f"{100 * s:.0f} %" for s in result["pruning"]["epochs_saved"])
        change = ", ".join(f"{d:+.4f}" for d in result["pruning"]["best_value_change"])
        print(f"pruning saved {saved} of the trial epochs; best validation macro-F1 changed by {change}")
    return result


if __name__ == "__main__":
    sys.exit(exit_status(main))
