#!/usr/bin/env bash
# The GPU checks in one go, one timed process at a time (about 14 minutes on an H100 or H200):
# the CUDA-only tests, `make bench` (throughput rows, the seed protocol for one seed and for three
# together), out-of-core vs in-memory training at 2 million rows, then adversarial training at the
# official protocol's scale. Every step is bounded
# with SIGKILL (Lightning catches SIGTERM and carries on). Results land in $OUT (outputs/gpu).
set -uo pipefail
export IDS_DATA_DIR=${IDS_DATA_DIR:-../shared/data}
PY=${PY:-python}
OUT=${OUT:-outputs/gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
timeout -s KILL 150 "$PY" -m pytest -q tests/integration/test_fast_path.py tests/integration/test_seeds.py \
    tests/unit/data/test_stream.py \
    2>&1 | tail -n 20 | tee "$OUT/cuda_tests.log"
timeout -s KILL 300 "$PY" -m ids_lightning.bench.train --output "$OUT/train.json" 2>&1 | tee "$OUT/bench_train.log"
timeout -s KILL 240 "$PY" -m ids_lightning.bench.scale --rows 2000000 --work-dir /tmp/scale_data \
    --output "$OUT/scale.json" 2>&1 | tee "$OUT/bench_scale.log"
timeout -s KILL 360 "$PY" -m ids_lightning.bench.adversarial_training --output "$OUT/adversarial.json" \
    2>&1 | tee "$OUT/adversarial.log"
