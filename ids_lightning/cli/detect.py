"""``ids detect``: the torch-free sensor (:mod:`ids_lightning.edge.detector`): score a flow file,
a stream or a growing log with a run folder's ONNX model and write EVE-shaped alerts.

Exit status (following sysexits where it applies): 0 when the input was read to its end (or a
followed log was stopped with SIGTERM or SIGINT after its last commit), 2 for input or settings
refused (one line on stderr), 3 when the input ended early (a cut archive: what came before the
cut is scored and summarised)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ids_lightning.cli.arguments import explained_features, positive, positive_seconds, thread_count
from ids_lightning.core.errors import exit_status, refused
from ids_lightning.edge.detector import Options, detect, print_summary

CUT_SHORT = 3


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ids detect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="run folder (preprocess.json, model.onnx)")
    parser.add_argument(
        "--input",
        required=True,
        help="flow file of the run's dataset (its format is sniffed: Zeek TSV or JSON, CSV, ...), a folder of "
        "rotated logs, a pipe, or - for standard input",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("alerts.jsonl"), help="one EVE JSON record per line (default: %(default)s)"
    )
    parser.add_argument("--all", action="store_true", help="write every flow (event_type flow), not only alerts")
    parser.add_argument(
        "--fpr",
        type=float,
        default=None,
        help="the operating point: the benign false-alarm rate whose threshold the run calibrated on validation "
        "(default 0.01 where the run has operating_points.json; else a non-benign prediction is an alert)",
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep reading a growing log (or a folder's newest), across rotations"
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="state file for restarts without loss or duplicates (default with --follow or a stream: "
        "<output>.state.json; without it a file's output is written whole at the end)",
    )
    parser.add_argument(
        "--incident-seconds",
        type=positive_seconds,
        default=Options.incident_seconds,
        help="a host incident's time window, on the flows' clock (default: %(default)s)",
    )
    parser.add_argument(
        "--incident-alerts",
        type=positive,
        default=Options.incident_alerts,
        help="alerts from one source host in one window that open an incident (default: the threshold the run "
        "calibrated on validation captures for this window and --fpr, else 5)",
    )
    explain = parser.add_mutually_exclusive_group()
    explain.add_argument(
        "--explain",
        type=explained_features,
        default=None,
        metavar="K",
        help=f"each alert's top K features, with their values and contributions (default: {Options.explain}; "
        "needs the run's explain.json)",
    )
    explain.add_argument("--no-explain", action="store_true", help="no explanations")
    parser.add_argument("--model", default="model.onnx", help="model.onnx or model.int8.onnx (default: %(default)s)")
    parser.add_argument(
        "--chunk-rows",
        type=positive,
        default=Options.chunk_rows,
        help="records parsed and scored at a time (default: %(default)s)",
    )
    parser.add_argument("--threads", type=thread_count, default=None, help="onnxruntime threads (default: all cores)")
    parser.add_argument(
        "--max-hosts",
        type=positive,
        default=Options.max_hosts,
        help="windowed runs: source hosts whose last flows are kept (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stopping = []

    def stop(signum, _frame) -> None:  # a followed log ends at its next commit
        stopping.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    try:
        summary = detect(
            args.run,
            args.input,
            args.output,
            args.model,
            args.chunk_rows,
            args.threads,
            max_hosts=args.max_hosts,
            all_flows=args.all,
            fpr=args.fpr,
            follow=args.follow,
            state=args.state,
            incident_seconds=args.incident_seconds,
            incident_alerts=args.incident_alerts,
            explain=None if args.no_explain else args.explain or Options.explain,
            stop=lambda: bool(stopping),
        )
    except ValueError as err:  # DataError, and the model's or preprocessing's refusal of the rows
        return refused("ids detect", err)
    print_summary(summary)
    return CUT_SHORT if "error" in summary else 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
