"""The whole pipeline in about three minutes on two CPU cores: ``make demo`` (``ids demo``).

Trains the seed paper's CNN-LSTM on NSL-KDD for a few epochs (official split: test on
KDDTest+), writes the plots, exports ONNX (fp32 and int8), scores the raw KDDTest+ file with the
streaming detector, runs a short edge benchmark, and ends with where every output is and what to
run next. A first look, not a result: the full run is ``make train``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ids_lightning.training.config import compose

log = logging.getLogger("ids_lightning.analysis.demo")
EPOCHS = 3


def demo(data_dir: Path, output: Path, epochs: int = EPOCHS) -> dict:
    from ids_lightning.core.files import find_files
    from ids_lightning.edge.detector import detect, print_summary
    from ids_lightning.edge.latency import bench, format_table
    from ids_lightning.training.run import train

    started = time.perf_counter()
    overrides = ["model=cnn_lstm", "dataset=nsl_kdd", f"trainer.max_epochs={epochs}", "logger=none"]
    log.info("1/3 training cnn_lstm on NSL-KDD for %d epochs (the full run, make train, takes up to 50)", epochs)
    metrics = train(compose(overrides, output, data_dir=data_dir))
    test_file = find_files("nsl_kdd/KDDTest+.txt", data_dir)[0]
    log.info("2/3 the streaming detector on the raw KDDTest+ file (%s)", test_file)
    summary = detect(output, test_file, output / "alerts.jsonl", progress=False)
    print_summary(summary)
    log.info("3/3 a short edge benchmark of the ONNX models (one thread)")
    report = bench(output, batches=[1, 256], threads=[1], latency_calls=300, seconds=0.3)
    print(format_table(report))
    seconds = time.perf_counter() - started
    print(
        f"\ndemo finished in {seconds:.0f} s. Outputs in {output}:\n"
        f"  metrics.json          test accuracy {metrics['test/acc']:.3f}, macro-F1 {metrics['test/f1_macro']:.3f}\n"
        f"  curves.png, confusion_matrix.png, roc.png, precision_recall.png\n"
        f"  model.onnx, model.int8.onnx, preprocess.json   what an edge box needs\n"
        f"  alerts.jsonl (+ .summary.json)                  one line per KDDTest+ record\n"
        f"  bench.json                                      latency and throughput\n"
        f"next:\n"
        f"  make train                                      the full run (10 to 20 minutes on 2 CPU cores)\n"
        f"  python train.py -m model=cnn,lstm,cnn_lstm,cnn_bilstm   compare the four models\n"
        f"  ids detect --run {output} --input <your flows> --output alerts.jsonl\n"
        f"  docs/ explains datasets, protocols, deployment, robustness, reliability"
    )
    return {"seconds": round(seconds, 1), "metrics": metrics, "detector": summary, "bench": report}
