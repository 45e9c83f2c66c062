"""What adversarial training buys: cnn_lstm on NSL-KDD with and without it, attacked alike.

``python -m ids_lightning.bench.adversarial`` trains the same model twice (official split,
``--epochs`` epochs): plainly, and with ``model.adversarial.method`` (PGD by default) at
``--eps`` on half of each batch; then attacks both with constrained FGSM and PGD at 0 and
``--eps`` on the first ``--rows`` KDDTest+ rows. Writes ``outputs/bench/adversarial.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ids_lightning.attack import attack
from ids_lightning.config import PROJECT_ROOT, compose
from ids_lightning.core.fileio import atomic_write_json


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each run (default: %(default)s)")
    parser.add_argument("--eps", type=float, default=0.1, help="attack budget (default: %(default)s)")
    parser.add_argument("--method", choices=["fgsm", "pgd"], default="pgd", help="adversarial training attack")
    parser.add_argument("--rows", type=int, default=4096, help="KDDTest+ rows attacked (default: %(default)s)")
    parser.add_argument("--data-dir", default=os.environ.get("IDS_DATA_DIR", "data"), help="data root")
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "outputs" / "bench" / "adversarial.json", help="JSON file"
    )
    args = parser.parse_args(argv)
    from ids_lightning.train import train

    results = []
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for method in ("none", args.method):
        run_dir = args.output.parent / f"adversarial_{stamp}_{method}"
        overrides = [
            "model=cnn_lstm",
            f"trainer.max_epochs={args.epochs}",
            "dataset.scaler=log_minmax",
            "logger=none",
            "trainer.enable_progress_bar=false",
            "callbacks.progress_bar=null",
            "callbacks.onnx_export=null",
            f"model.adversarial.method={method}",
            f"model.adversarial.eps={args.eps}",
        ]
        started = time.perf_counter()
        metrics = train(compose(overrides, run_dir, data_dir=args.data_dir))
        fit_seconds = time.perf_counter() - started
        attacked = attack(run_dir, eps=[0.0, args.eps], max_rows=args.rows)
        row = {
            "adversarial_training": method,
            "epochs": metrics["epochs_run"],
            "fit_seconds": round(fit_seconds, 1),
            "test/acc": metrics["test/acc"],
            "test/f1_macro": metrics["test/f1_macro"],
        }
        for name in ("fgsm", "pgd"):
            for eps in (0.0, args.eps):
                for metric in ("acc", "evasion_rate"):
                    row[f"{name}/eps_{eps:g}/{metric}"] = attacked[f"test_adv/{name}/eps_{eps:g}/{metric}"]
        results.append(row)
        print(row)
    atomic_write_json(args.output, results)
    return results


if __name__ == "__main__":
    main()
