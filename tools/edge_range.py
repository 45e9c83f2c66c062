"""``make edge-range``: the edge extra's supported range tested at both ends on x86.

Virtual environments under ``--cache`` (default ``outputs/edge-range``), each with the
project's wheel and only what the ``edge`` extra needs (no torch), pinned to the oldest releases
the extra admits (``oldest``), the oldest onnxruntime that runs the int8 models
(``oldest_int8``), or left to pip's newest (``newest``). In each: ``ids detect`` on all
of KDDTest+ with the shipped example, on a real IoT-23 Zeek log with the windowed model of ``make
edge-arm64`` (trained here if its cache lacks it), and the edge bench; the alerts are compared
record by record with the development environment's (:func:`tools.edge_arm64.compare`).
Writes ``report.json``; exit status 1 when an end differs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import venv
from pathlib import Path

from ids_lightning.core.errors import exit_status
from ids_lightning.core.fileio import atomic_write_json
from tools.edge_arm64 import (
    EXAMPLE,
    ROOT_DIR,
    Case,
    bench,
    compare,
    data_files,
    detect,
    iot23_model,
    project_wheel,
    reported,
    run,
    versions,
)

# The oldest releases pyproject's base and edge extra admit (keep them equal to its lower
# bounds), the oldest onnxruntime that runs the int8 models too, and the newest of each.
ENDS = {
    "oldest": ["numpy==1.24.4", "onnxruntime==1.19.2", "communityid==1.5.0"],
    "oldest_int8": ["numpy==1.24.4", "onnxruntime==1.24.4", "communityid==1.5.0"],
    "newest": ["numpy", "onnxruntime", "communityid"],
}


def environment(folder: Path, pins: list[str], wheel: Path) -> Path:
    """A fresh venv with the project (no dependencies of its own resolved) and ``pins``."""
    venv.create(folder, with_pip=True, clear=True)
    python = folder / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--upgrade", *pins])
    run([python, "-m", "pip", "install", "-q", "--no-deps", wheel])
    run([python, "-m", "pip", "check"])  # the pins satisfy what the wheel and onnxruntime declare
    return python


def check(args: argparse.Namespace) -> dict:
    cache = args.cache.resolve()
    kdd_test, iot_log = data_files(args.data_dir)
    wheel = project_wheel(cache / "wheel")
    iot_model = iot23_model(args.iot_cache.resolve(), args.data_dir.resolve())
    cases = [
        Case("nsl_kdd_kddtest", EXAMPLE, kdd_test),
        Case("iot23_window8", iot_model, iot_log),
    ]
    ends = ENDS
    pythons = {"reference": sys.executable}
    report: dict = {"ends": {}, "parity": {}, "seconds": {}}
    for end, pins in ends.items():
        started = time.perf_counter()
        pythons[end] = environment(cache / end, pins, wheel)
        report["seconds"][f"{end} install"] = round(time.perf_counter() - started, 1)
        report["ends"][end] = {"pins": pins, **versions(pythons[end])}
    for case in cases:
        for where, python in pythons.items():
            report["seconds"][f"{where} {case.name}"] = detect(python, case, cache / "runs" / case.name / where)
        for end in ends:
            folder = cache / "runs" / case.name
            result = compare(folder / "reference" / "alerts.jsonl", folder / end / "alerts.jsonl", args.tolerance)
            report["parity"][f"{case.name}/{end}"] = result
    for end in ends:  # the bench measures the int8 model too, where this onnxruntime can run it
        for name, model in (("nsl_kdd", EXAMPLE), ("iot23_window8", iot_model)):
            report["ends"][end][f"bench/{name}"] = bench(pythons[end], model, cache / "runs" / "bench" / end / name)
    report["reference"] = versions(sys.executable)
    return report


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.edge_range", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache", type=Path, default=ROOT_DIR / "outputs" / "edge-range", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--iot-cache",
        type=Path,
        default=ROOT_DIR / "outputs" / "edge-arm64",
        help="where make edge-arm64 keeps its windowed IoT-23 model (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", ROOT_DIR / "data")), help="the data root"
    )
    parser.add_argument("--tolerance", type=float, default=1e-5, help="(default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    report = reported("edge-range", check, args)
    if isinstance(report, int):
        return report
    atomic_write_json(args.cache / "report.json", report)
    for end, found in report["ends"].items():
        print(f"{end}: numpy {found['numpy']}, onnxruntime {found['onnxruntime']}, Python {found['python']}")
    for name, result in report["parity"].items():
        print(
            f"{name}: {result['records']:,} records, class mismatches {result['class_mismatches']}, "
            f"max abs prob diff {result['max_abs_prob_diff']:.1e}, explanations differing "
            f"{result['explanation_mismatches']}/{result['explanations']}"
        )
    print(f"written to {args.cache / 'report.json'}")
    return 0 if all(r["parity"] for r in report["parity"].values()) else 1


if __name__ == "__main__":
    sys.exit(exit_status(main))
