"""The fault suite: corrupt inputs, hostile run folders and sweeps, streams, bad settings and bad
outputs against every command, run as a user runs them.

``python -m tools.chaos`` (``make chaos``) builds each probe's material in a folder of its own,
runs its command (``python -m ids_lightning ...``) in a fresh process under a time limit, and
classifies what happened from the exit status, the output and the files around it (the classes
are in :mod:`tools.chaos.lab`). Writes ``outputs/bench/chaos.json`` (one row per probe: probe,
tool, outcome, exit, rows_in, rows_out, rows_skipped, seconds, detail; the counts per outcome)
and prints the table. ``--fast`` runs the probes that need no training; ``--tool`` one tool's.
Exits 1 when any probe ends badly or a row is unaccounted for.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ids_lightning.core.fileio import atomic_write_json
from ids_lightning.training.config import PROJECT_ROOT
from tools.chaos.detector import detector_probes
from tools.chaos.lab import BAD, GOOD, OUTCOMES, Lab, Probe, run_probe
from tools.chaos.prepare import prepare_probes
from tools.chaos.report import report_probes
from tools.chaos.run_folders import bench_module_probes, edge_bench_probes, ensemble_probes, hostile_folder_probes
from tools.chaos.train import train_probes


def probes() -> list[Probe]:
    return [
        *detector_probes(),
        *prepare_probes(),
        *hostile_folder_probes(),
        *edge_bench_probes(),
        *ensemble_probes(),
        *bench_module_probes(),
        *report_probes(),
        *train_probes(),
    ]


def run_probes(
    data_dir: Path,
    fast: bool = False,
    tools: list[str] | None = None,
    jobs: int | None = None,
    progress: bool = False,
    matching: str = "",
) -> dict:
    """Run the selected probes (``matching``: a part of their names), ``jobs`` at a time (one
    per core by default: each is a process)."""
    with tempfile.TemporaryDirectory(prefix="ids-chaos-") as tmp:
        lab = Lab(Path(tmp), data_dir)
        selected = [
            p for p in probes() if (p.fast or not fast) and (tools is None or p.tool in tools) and matching in p.name
        ]
        for dataset in ("nsl_kdd", "iot23", "bot_iot"):  # built before any probe runs: they are read-only
            lab.run(dataset)
        workspaces = [lab.workspace() for _ in selected]
        rows: list[dict] = []

        def one(index: int) -> dict:
            row = run_probe(selected[index], lab, workspaces[index])
            if progress:
                done = f"[{len(rows) + 1}/{len(selected)}]"
                print(f"{done} {row['outcome']:14} {row['tool']:8} {row['probe']}", flush=True)
            rows.append(row)
            return row

        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            ordered = list(pool.map(one, range(len(selected))))
    summary = {outcome: sum(1 for r in ordered if r["outcome"] == outcome) for outcome in OUTCOMES}
    unbalanced = [r["probe"] for r in ordered if r["outcome"] in ("ok", "counted_skip")
                  and r["rows_in"] != r["rows_out"] + r["rows_skipped"]]  # fmt: skip
    return {"probes": len(ordered), "summary": summary, "unbalanced_rows": unbalanced, "rows": ordered}


def format_table(result: dict) -> str:
    lines = [f"{'tool':10} {'outcome':14} {'exit':>4} {'in':>6} {'out':>6} {'skip':>5}  probe — detail"]
    for r in result["rows"]:
        lines.append(
            f"{r['tool']:10} {r['outcome']:14} {r['exit'] if r['exit'] is not None else '-':>4} {r['rows_in']:>6} "
            f"{r['rows_out']:>6} {r['rows_skipped']:>5}  {r['probe']}" + (f" — {r['detail']}" if r["detail"] else "")
        )
    counts = result["summary"]
    lines.append(
        f"{result['probes']} probes: "
        + ", ".join(f"{k} {counts[k]}" for k in GOOD)
        + "; bad: "
        + ", ".join(f"{k} {counts[k]}" for k in BAD)
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="only the probes that need no training")
    parser.add_argument("--tool", nargs="+", default=None, help="only these tools' probes (detect, prepare, ...)")
    parser.add_argument("--probe", default="", help="only the probes whose names hold this text")
    parser.add_argument("--jobs", type=int, default=None, help="probes at a time (default: one per core)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "chaos.json", help="JSON file"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = run_probes(args.data_dir.resolve(), args.fast, args.tool, args.jobs, True, args.probe)
    result["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_json(args.output, result)
    print(format_table(result))
    print(f"{result['seconds']} s; written to {args.output}")
    bad = sum(result["summary"][outcome] for outcome in BAD)
    return 1 if bad or result["unbalanced_rows"] else 0


if __name__ == "__main__":
    sys.exit(main())
