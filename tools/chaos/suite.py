"""The fault suite: corrupt inputs, hostile run folders and bad settings against every tool.

``python -m tools.chaos`` (``make chaos``) builds each probe in a temporary folder,
runs train, detect, prepare, export, attack or report against it, and classifies what happened:

- ``clear_error``: one of the project's own errors (a data, config or run-folder error, or a
  command's usage error) that names what is wrong;
- ``counted_skip``: it ran, and every input row was either used or counted as skipped;
- ``ok``: it ran and used every row;
- ``traceback``: any other exception;
- ``silent_loss``: it ran, but rows went missing, or it accepted what it had to refuse;
- ``code_execution``: a file that hostile input tries to create exists.

Writes ``outputs/bench/chaos.json`` (one row per probe: probe, tool, outcome, rows_in, rows_out,
rows_skipped, detail; and the counts per outcome) and prints the table. ``--fast`` runs the
probes that need no training (the test suite runs them).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.training.config import PROJECT_ROOT
from tools.chaos.detector import detector_probes
from tools.chaos.lab import OUTCOMES, Lab, Probe, classify
from tools.chaos.prepare import prepare_probes
from tools.chaos.report import report_probes
from tools.chaos.run_folders import hostile_folder_probes
from tools.chaos.train import train_probes


def probes(lab: Lab) -> list[Probe]:
    return [
        *detector_probes(lab),
        *prepare_probes(lab),
        *hostile_folder_probes(lab),
        *report_probes(lab),
        *train_probes(lab),
    ]


def run_probes(data_dir: Path, fast: bool = False, names: list[str] | None = None) -> dict:
    os.environ.setdefault("IDS_DATA_DIR", str(data_dir))
    with tempfile.TemporaryDirectory(prefix="ids-chaos-") as tmp:
        lab = Lab(Path(tmp), data_dir)
        selected = [p for p in probes(lab) if (p.fast or not fast) and (names is None or p.name in names)]
        rows = [classify(p, lab) for p in selected]
    summary = {outcome: sum(1 for r in rows if r["outcome"] == outcome) for outcome in OUTCOMES}
    unbalanced = [r["probe"] for r in rows if r["rows_in"] != r["rows_out"] + r["rows_skipped"]
                  and r["outcome"] not in ("clear_error", "traceback", "code_execution")]  # fmt: skip
    return {"probes": len(rows), "summary": summary, "unbalanced_rows": unbalanced, "rows": rows}


def format_table(result: dict) -> str:
    lines = [f"{'tool':8} {'outcome':14} {'in':>6} {'out':>6} {'skip':>5}  probe — detail"]
    for r in result["rows"]:
        lines.append(
            f"{r['tool']:8} {r['outcome']:14} {r['rows_in']:>6} {r['rows_out']:>6} {r['rows_skipped']:>5}  "
            f"{r['probe']}" + (f" — {r['detail']}" if r["detail"] else "")
        )
    lines.append(f"{result['probes']} probes: " + ", ".join(f"{k} {v}" for k, v in result["summary"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="only the probes that need no training")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "chaos.json", help="JSON file"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run_probes(args.data_dir.resolve(), args.fast)
    result["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_json(args.output, result)
    print(format_table(result))
    print(f"{result['seconds']} s; written to {args.output}")
    bad = sum(result["summary"][o] for o in ("traceback", "silent_loss", "code_execution"))
    if bad or result["unbalanced_rows"]:
        raise SystemExit(1)
    return result


if __name__ == "__main__":
    main()
