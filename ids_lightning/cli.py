"""``ids``: one command for every tool. ``ids <command> --help`` explains each; every command is
also ``python -m ids_lightning.<module>``, and ``ids train`` is ``python train.py``."""

from __future__ import annotations

import importlib
import sys

BENCHES = (
    "train",
    "parse",
    "edge",
    "detector",
    "adversarial_training",
    "scale",
    "windows",
    "ablation",
    "novelty",
    "chaos",
    "results",
)
# command -> (module, one line); modules are imported only when their command runs, so the
# edge install (numpy + onnxruntime) can run `ids detect` and `ids edge-bench`
COMMANDS = {
    "train": ("ids_lightning.train", "train, test and export one run, or a sweep with -m (Hydra overrides)"),
    "demo": ("ids_lightning.demo", "the whole pipeline in about three minutes on a CPU"),
    "prepare": ("ids_lightning.prepare", "convert flow files of any dataset to Parquet, chunk by chunk"),
    "detect": ("ids_lightning.edge.detector", "score a flow file with a run folder's ONNX model (no torch)"),
    "edge-bench": ("ids_lightning.edge.bench", "ONNX latency and throughput of a run folder on this box (no torch)"),
    "export": ("ids_lightning.export", "re-export a finished run to ONNX (fp32 and int8)"),
    "attack": ("ids_lightning.attack", "FGSM/PGD against a finished run"),
    "report": ("ids_lightning.report", "table and figures of finished sweeps"),
    "search": ("ids_lightning.search", "Optuna search over a validation metric (Hydra overrides)"),
    "baseline": ("ids_lightning.baseline", "random forest and gradient boosting on the same rows (Hydra overrides)"),
    "ensemble": ("ids_lightning.ensemble", "average the probabilities of several runs in one ONNX model"),
    "federated": ("ids_lightning.federated", "Flower's deployment engine: SuperLink, a site's SuperNode, submit a run"),
    "bench": ("ids_lightning.bench", "benchmarks: " + ", ".join(BENCHES)),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [__doc__.split("\n\n")[0], "", "usage: ids <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    lines += ["", "  bench " + " | ".join(BENCHES)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> object:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return None
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise SystemExit(f"ids: unknown command {command!r}\n\n{usage()}")
    module = COMMANDS[command][0]
    if command == "bench":
        if not rest or rest[0] not in BENCHES:
            raise SystemExit(f"usage: ids bench {{{','.join(BENCHES)}}} [options]")
        module, rest = f"ids_lightning.bench.{rest[0]}", rest[1:]
    if command == "train":  # Hydra reads the command line itself
        sys.argv = ["ids train", *rest]
        return importlib.import_module(module).main()
    return importlib.import_module(module).main(rest)


if __name__ == "__main__":
    main()
