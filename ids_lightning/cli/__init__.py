"""``ids``: one command for every tool. ``ids <command> --help`` explains each; every command is
also ``python -m ids_lightning <command>`` and ``python -m ids_lightning.cli.<command>``, and
``ids train`` is ``python train.py``.

Each command module parses its arguments and calls the library. Every command exits 0 on
success; input or settings the project refuses end with one line on stderr and status 2.
"""

from __future__ import annotations

import importlib
import sys

from ids_lightning.core.errors import REFUSED, exit_status

# command -> (module under ids_lightning.cli, one line); modules are imported only when their
# command runs, so the edge install (numpy + onnxruntime) can run `ids detect` and `ids edge-bench`
COMMANDS = {
    "train": ("train", "train, test and export one run, or a sweep with -m (Hydra overrides)"),
    "demo": ("demo", "the whole pipeline in about three minutes on a CPU"),
    "prepare": ("prepare", "convert flow files of any dataset to Parquet, chunk by chunk"),
    "detect": ("detect", "score a flow file with a run folder's ONNX model (no torch)"),
    "edge-bench": ("edge_bench", "ONNX latency and throughput of a run folder on this box (no torch)"),
    "export": ("export", "re-export a finished run to ONNX (fp32 and int8)"),
    "attack": ("attack", "FGSM/PGD against a finished run"),
    "report": ("report", "table and figures of finished sweeps"),
    "search": ("search", "Optuna search over a validation metric (Hydra overrides)"),
    "baseline": ("baseline", "random forest and gradient boosting on the same rows (Hydra overrides)"),
    "trees": ("trees", "LightGBM tuned on validation, exported to ONNX as a run folder (Hydra overrides)"),
    "ensemble": ("ensemble", "average the probabilities of several runs in one ONNX model"),
    "federated": ("federated", "Flower's deployment engine: SuperLink, a site's SuperNode, submit a run"),
    "bench": ("bench", "benchmarks (ids bench --help lists them)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [__doc__.split("\n\n")[0], "", "usage: ids <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``ids <command> [options]``: the command's exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"ids: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return REFUSED
    module = importlib.import_module(f"ids_lightning.cli.{COMMANDS[command][0]}")
    return exit_status(module.main, rest, f"ids {command}")


def console_main() -> None:
    """The ``ids`` console script."""
    sys.exit(main())
