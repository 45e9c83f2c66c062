"""``ids bench <name> [options]``: the benchmarks (``make bench`` and friends); speed targets
live there, never in timed tests. Each is also ``python -m ids_lightning.bench.<name>``."""

from __future__ import annotations

import importlib
import sys

from ids_lightning.core.errors import REFUSED, exit_status

BENCHES = (
    "train",
    "parse",
    "detector",
    "sensor",
    "incidents",
    "kills",
    "explain",
    "adversarial_training",
    "scale",
    "windows",
    "ablation",
    "novelty",
    "federated",
    "tracking",
    "results",
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: ids bench {{{','.join(BENCHES)}}} [options]\n\n{__doc__}")
        return 0
    if argv[0] not in BENCHES:
        print(f"usage: ids bench {{{','.join(BENCHES)}}} [options]", file=sys.stderr)
        return REFUSED
    importlib.import_module(f"ids_lightning.bench.{argv[0]}").main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
