"""How faithful and how costly the sensor's explanations are (``ids detect --explain``).

``python -m ids_lightning.bench.explain [--seeds 1 2 3] [--epochs 3]`` trains a CNN-LSTM per
seed on NSL-KDD (official split, tested on KDDTest+) and on IoT-23 (``experiment=sensor``:
tested on captures 5-1 and 42-1), then on up to ``--alerts`` alerts of the test rows (flows
predicted as an attack class):

- **deletion test**: the alerted class's probability before and after the top-k features
  (k = 1, 2, 5, by each method) take the reference flow's values, against k features drawn at
  random (ten draws); the higher the drop, the more faithful the ranking (a drop cannot exceed
  the probability itself, so with few features the random draw sets a low ceiling on the ratio);
- **rank agreement** of the edge attributions (occlusion through onnxruntime) with Captum's
  Integrated Gradients (32 steps from the same reference) and FeatureAblation (the same
  occlusion, in torch: a check of the implementation), as Spearman correlation over features
  and top-5 overlap;
- **cost** on one core: per explained alert in batches of 256 (p50), scoring and explaining
  one alert against scoring it (p50 of 200 calls), and ``ids detect --threads 1`` throughput
  with ``--explain 5`` against ``--no-explain`` on KDDTest+, on a mostly quiet IoT-23 log
  (50,000 real flows of capture 34-1, 5 % of them ones the run alerts on), and with a windowed
  run (window 32) on the same log.

Writes ``--output`` (default ``outputs/bench/explain.json``) and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ids_lightning.bench.common import train_quietly
from ids_lightning.core.errors import exit_status
from ids_lightning.core.explain import Explainer, features_of, load_reference
from ids_lightning.core.fileio import atomic_write_json, open_text
from ids_lightning.core.table import concat
from ids_lightning.edge.runtime import load_run

TOP_K = 5
DELETED = (1, 2, 5)  # features deleted in the deletion test
RANDOM_DRAWS = 10
QUIET_SOURCE = "iot23/CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz"  # the largest shared capture
IOT23_TESTS = ["CTU-Honeypot-Capture-5-1", "CTU-IoT-Malware-Capture-42-1"]  # experiment=sensor's test captures
SETUPS = {
    "nsl_kdd": (["dataset=nsl_kdd", "model=cnn_lstm"], ["nsl_kdd/KDDTest+.txt.gz"]),
    "iot23": (["experiment=sensor", "model=cnn_lstm"], [f"iot23/{c}.conn.log.labeled.gz" for c in IOT23_TESTS]),
}


def train(name: str, overrides: list[str], seed: int, epochs: int, data_dir: Path, work: Path) -> Path:
    return train_quietly(work / f"{name}_seed{seed}", [*overrides, f"seed={seed}"], epochs, data_dir)


def alerts_of(run, files: list[Path], limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``limit`` test rows predicted as an attack class, and that class."""
    table = concat([run.spec.read_file(path) for path in files])
    x, _ = run.preprocessor.transform(table)
    probabilities = run.score(x)
    benign = [i for i, c in enumerate(run.class_names) if run.spec.is_benign(c)]
    attacks = np.setdiff1d(np.arange(len(run.class_names)), benign)
    likeliest = attacks[probabilities[:, attacks].argmax(axis=1)]
    rows = np.flatnonzero(~np.isin(probabilities.argmax(axis=1), benign))
    rows = np.sort(np.random.default_rng(seed).permutation(rows)[:limit])
    return x[rows], likeliest[rows]


def deletion_drop(score, x, target, reference, features, chosen: np.ndarray) -> np.ndarray:
    """The target's probability drop when the ``chosen`` features ``[n, k]`` take the reference."""
    occluded = x.copy()
    for i, groups in enumerate(chosen):
        columns = [c for g in groups for c in features[g].columns]
        occluded[i, columns] = reference[columns]
    rows = np.arange(len(x))
    return score(x)[rows, target] - score(occluded)[rows, target]


def captum_attributions(folder: Path, x, target, reference, features) -> dict[str, np.ndarray]:
    """Integrated Gradients and FeatureAblation of the run's torch model, per feature."""
    import torch
    from captum.attr import FeatureAblation, IntegratedGradients

    from ids_lightning.training.run_folder import load_best_model

    model = load_best_model(folder)
    inputs = torch.from_numpy(x)
    baseline = torch.from_numpy(reference)[None].expand_as(inputs)
    targets = torch.from_numpy(target.astype(np.int64))
    mask = torch.zeros(1, x.shape[1], dtype=torch.long)
    for g, feature in enumerate(features):
        mask[0, list(feature.columns)] = g
    ig = IntegratedGradients(model).attribute(inputs, baselines=baseline, target=targets, n_steps=32).detach().numpy()
    fa = FeatureAblation(model).attribute(inputs, baselines=baseline, target=targets, feature_mask=mask).numpy()
    return {
        "integrated_gradients": np.column_stack([ig[:, list(f.columns)].sum(axis=1) for f in features]),
        "feature_ablation": np.column_stack([fa[:, f.columns[0]] for f in features]),
    }


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of the Spearman correlation of two attributions (rows with a constant one left out)."""
    from scipy.stats import spearmanr

    values = [spearmanr(u, v).statistic for u, v in zip(a, b) if np.ptp(u) > 0 and np.ptp(v) > 0]
    return float(np.mean(values)) if values else float("nan")


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = TOP_K) -> float:
    top = lambda m: np.argsort(-m, axis=1, kind="stable")[:, :k]  # noqa: E731
    return float(np.mean([len(set(u) & set(v)) for u, v in zip(top(a), top(b))]))


def faithfulness(folder: Path, files: list[Path], limit: int, seed: int) -> dict:
    run = load_run(folder, threads=1)
    features = features_of(run.preprocessor, run.spec.feature_groups)
    reference = load_reference(folder, run.preprocessor)
    x, target = alerts_of(run, files, limit, seed)
    edge = Explainer(features, reference).attribute(run.score, x, target).features
    methods = {"edge_occlusion": edge, **captum_attributions(folder, x, target, reference, features)}
    rng = np.random.default_rng(seed)
    row = {"alerts": len(x), "features": len(features),
           "probability": round(float(run.score(x)[np.arange(len(x)), target].mean()), 4)}  # fmt: skip
    for k in DELETED:
        random_drop = float(np.mean([
            deletion_drop(run.score, x, target, reference, features,
                          np.array([rng.choice(len(features), k, replace=False) for _ in x])).mean()
            for _ in range(RANDOM_DRAWS)
        ]))  # fmt: skip
        row[f"random{k}_drop"] = round(random_drop, 4)
        for name, attribution in methods.items():
            top = np.argsort(-attribution, axis=1, kind="stable")[:, :k]
            drop = float(deletion_drop(run.score, x, target, reference, features, top).mean())
            row[f"{name}/top{k}_drop"] = round(drop, 4)
            row[f"{name}/top{k}_ratio_to_random"] = round(drop / random_drop, 2) if random_drop > 0 else None
    for name in ("integrated_gradients", "feature_ablation"):
        row[f"spearman_vs_{name}"] = round(spearman(edge, methods[name]), 3)
        row[f"top5_overlap_vs_{name}"] = round(top_overlap(edge, methods[name]), 2)
    return row


def p50_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def cost(folder: Path, files: list[Path]) -> dict:
    """Per explained alert in batches, and one alert at batch 1, on one thread (rows of ``files``
    through preprocessing; windowed runs score windows of each host's flows)."""
    from ids_lightning.edge.windows import HostWindows

    run = load_run(folder, threads=1)
    features = features_of(run.preprocessor, run.spec.feature_groups)
    explainer = Explainer(features, load_reference(folder, run.preprocessor), run.preprocessor.window)
    table = concat([run.spec.read_file(path, keep_ids=True) for path in files])
    if run.preprocessor.window > 1:
        x, _ = HostWindows(run.preprocessor, run.spec, 100_000).transform(table)
    else:
        x, _ = run.preprocessor.transform(table)
    batch = np.asarray(x[np.arange(min(256, len(x)))], dtype=np.float32)
    target = run.score(batch).argmax(axis=1)
    one, one_target = batch[:1], target[:1]
    return {
        "window": run.preprocessor.window,
        "rows_scored_per_alert": explainer.rows_per_input,
        "per_alert_ms_batch256_p50": round(p50_ms(lambda: explainer.attribute(run.score, batch, target), 7)
                                           / len(batch), 3),
        "batch1_plain_ms_p50": round(p50_ms(lambda: run.score(one), 200), 3),
        "batch1_explained_ms_p50": round(
            p50_ms(lambda: (run.score(one), explainer.attribute(run.score, one, one_target)), 200), 3
        ),
    }  # fmt: skip


def throughput(folder: Path, source: Path, work: Path, rounds: int = 2) -> dict:
    """``ids detect --threads 1`` records/s with ``--explain 5`` and ``--no-explain``, interleaved."""
    rates: dict[str, list[float]] = {"explain": [], "plain": []}
    share = None
    for _ in range(rounds):
        for mode, flag in (("plain", ["--no-explain"]), ("explain", ["--explain", "5"])):
            output = work / f"{mode}.jsonl"
            command = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(folder), "--input", str(source)]
            subprocess.run(
                [*command, "--output", str(output), "--threads", "1", *flag], check=True, capture_output=True
            )
            summary = json.loads(output.with_name(output.name + ".summary.json").read_text())
            rates[mode].append(summary["records_per_s"])
            share = sum(summary["alerts"].values()) / summary["records"]
    plain, explained = float(np.median(rates["plain"])), float(np.median(rates["explain"]))
    return {"input": source.name, "alert_share": round(share, 4), "records_per_s_plain": round(plain),
            "records_per_s_explain5": round(explained), "ratio": round(explained / plain, 3)}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds per dataset (default: 1 2 3)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run (default: %(default)s)")
    parser.add_argument("--alerts", type=int, default=300, help="alerts explained per run (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("IDS_DATA_DIR", "data")), help="data root")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench/explain.json"), help="JSON file")
    args = parser.parse_args(argv)
    data = args.data_dir.resolve()
    result: dict = {"load": os.getloadavg()[0], "faithfulness": [], "cost": [], "throughput": []}
    with tempfile.TemporaryDirectory(prefix="ids-explain-") as work:
        work = Path(work)
        runs = {}
        for name, (overrides, files) in SETUPS.items():
            paths = [data / f for f in files]
            for seed in args.seeds:
                folder = train(name, overrides, seed, args.epochs, data, work)
                runs.setdefault(name, folder)
                row = {"dataset": name, "seed": seed, **faithfulness(folder, paths, args.alerts, seed)}
                result["faithfulness"].append(row)
                print(json.dumps(row))
            result["cost"].append({"dataset": name, **cost(runs[name], paths)})
        windowed = train(
            "iot23_w32", [*SETUPS["iot23"][0], "dataset.window=32"], args.seeds[0], args.epochs, data, work
        )
        iot23_files = [data / f for f in SETUPS["iot23"][1]]
        result["cost"].append({"dataset": "iot23", **cost(windowed, iot23_files)})
        quiet = mostly_quiet_log(runs["iot23"], data / QUIET_SOURCE, 0.05, 50_000, work)
        for folder, source in ((runs["nsl_kdd"], data / SETUPS["nsl_kdd"][1][0]), (runs["iot23"], quiet),
                               (windowed, quiet)):  # fmt: skip
            result["throughput"].append({"window": load_run(folder).preprocessor.window,
                                         **throughput(folder, source, work)})  # fmt: skip
            print(json.dumps(result["throughput"][-1]))
    print(tables(result))
    atomic_write_json(args.output, result)
    return result


def mostly_quiet_log(folder: Path, capture: Path, share: float, lines: int, work: Path, seed: int = 0) -> Path:
    """A Zeek log of ``lines`` real flows of ``capture`` (fresh uids) of which ``share`` are
    flows the run alerts on and the rest flows it does not, drawn with replacement: the shared
    captures are small or mostly alerts, a sensor's traffic is mostly quiet."""
    records = work / "flags.jsonl"
    command = [sys.executable, "-m", "ids_lightning", "detect", "--run", str(folder), "--input", str(capture)]
    subprocess.run([*command, "--output", str(records), "--all", "--no-explain"], check=True, capture_output=True)
    alerting = {r["input"]["line"] for r in map(json.loads, records.open()) if r["event_type"] == "alert"}
    with open_text(capture) as handle:
        text = handle.readlines()
    header = [t for t in text if t.startswith("#") and not t.startswith("#close")]
    flows = [(n, t) for n, t in enumerate(text, start=1) if not t.startswith("#")]
    loud = [t for n, t in flows if n in alerting]
    quiet = [t for n, t in flows if n not in alerting]
    rng = np.random.default_rng(seed)
    chosen = [loud[i] for i in rng.integers(0, len(loud), int(lines * share))]
    chosen += [quiet[i] for i in rng.integers(0, len(quiet), lines - len(chosen))]
    body = []
    for n, i in enumerate(rng.permutation(len(chosen))):
        fields = chosen[i].split("\t")
        fields[1] = f"Q{n:09d}"  # a fresh uid
        body.append("\t".join(fields))
    path = work / "quiet.conn.log"
    path.write_text("".join(header) + "".join(body))
    return path


def tables(result: dict) -> str:
    lines = ["| dataset | seeds | alerts | p(class) | k | edge top-k drop | random-k drop | ratio | IG top-k drop | "
             "IG ratio |", "|" + "---|" * 10]  # fmt: skip
    agreement = ["| dataset | Spearman vs IG | top-5 overlap vs IG | Spearman vs FeatureAblation | "
                 "top-5 overlap vs FeatureAblation |", "|" + "---|" * 5]  # fmt: skip
    for name in SETUPS:
        rows = [r for r in result["faithfulness"] if r["dataset"] == name]

        def mean(key: str, rows: list[dict] = rows) -> float:
            return float(np.mean([r[key] for r in rows]))

        for k in DELETED:
            lines.append(
                f"| {name} | {len(rows)} | {int(mean('alerts'))} | {mean('probability'):.3f} | {k} | "
                f"{mean(f'edge_occlusion/top{k}_drop'):.3f} | {mean(f'random{k}_drop'):.3f} | "
                f"{mean(f'edge_occlusion/top{k}_ratio_to_random'):.2f} | "
                f"{mean(f'integrated_gradients/top{k}_drop'):.3f} | "
                f"{mean(f'integrated_gradients/top{k}_ratio_to_random'):.2f} |"
            )
        agreement.append(
            f"| {name} | {mean('spearman_vs_integrated_gradients'):.2f} | "
            f"{mean('top5_overlap_vs_integrated_gradients'):.2f} | {mean('spearman_vs_feature_ablation'):.3f} | "
            f"{mean('top5_overlap_vs_feature_ablation'):.2f} |"
        )
    costs = ["| dataset | window | rows scored per alert (at most) | ms per explained alert (batches of 256, p50) | "
             "batch 1: plain / explained ms (p50) |", "|" + "---|" * 5]  # fmt: skip
    for c in result["cost"]:
        batch1 = f"{c['batch1_plain_ms_p50']} / {c['batch1_explained_ms_p50']}"
        costs.append(f"| {c['dataset']} | {c['window']} | {c['rows_scored_per_alert']} | "
                     f"{c['per_alert_ms_batch256_p50']} | {batch1} |")  # fmt: skip
    speed = ["| input | window | alerts | records/s without | with --explain 5 | ratio |", "|" + "---|" * 6]
    for t in result["throughput"]:
        speed.append(f"| {t['input']} | {t['window']} | {100 * t['alert_share']:.1f} % | "
                     f"{t['records_per_s_plain']:,} | {t['records_per_s_explain5']:,} | {t['ratio']} |")  # fmt: skip
    return "\n\n".join("\n".join(t) for t in (lines, agreement, costs, speed))


if __name__ == "__main__":
    sys.exit(exit_status(main))
