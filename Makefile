# Every target installs what is missing first, into .venv (delete it to start over).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU by default: an unpinned torch would pull a multi-GB CUDA build. For a GPU build, e.g.
#   make install TORCH_SPEC=torch TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
ARGS ?=
# pytest processes for `make test` (one per core, one thread each: see tests/conftest.py)
TEST_WORKERS ?= 2

.PHONY: install demo example train test test-slow test-all bench bench-scale gpu-check bench-windows bench-federated ablation tournament tournament-cpu bench-tracking bench-parse edge-bench edge-arm64 edge-range reproduce reproduce-quick report results chaos lint format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

## the whole pipeline in about 3 minutes on 2 CPU cores: train (3 epochs), plots, ONNX, detector, edge bench
demo: install
	$(PY) -m ids_lightning.cli.demo $(ARGS)

EXAMPLE ?= examples/nsl_kdd_cnn_lstm
## regenerate the example run folder that ships with the repo (ONNX models, preprocessing, metrics)
example: install
	rm -rf outputs/example
	$(PY) train.py model=cnn_lstm dataset=nsl_kdd dataset.scaler=log_minmax trainer.max_epochs=10 logger=none \
		hydra.run.dir=outputs/example
	mkdir -p $(EXAMPLE)
	cp outputs/example/model.onnx outputs/example/model.int8.onnx outputs/example/preprocess.json \
		outputs/example/novelty.json outputs/example/explain.json outputs/example/metrics.json $(EXAMPLE)/

## train the default detector (cnn_lstm on NSL-KDD, official split); extra overrides in ARGS
train: install
	$(PY) train.py $(ARGS)

## unit + integration tests (no training / tiny trainings on the real data); CI runs this
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests/unit tests/integration $(ARGS)

## end-to-end tests (tests/e2e, marked slow): sweeps, kill-and-resume, notebooks, Optuna, real scale,
## DDP with two CPU processes, out-of-core memory
test-slow: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m slow tests/e2e $(ARGS)

## every tier
test-all: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "slow or not slow" tests $(ARGS)

## training throughput of the project vs Lightning+DataLoader vs a hand loop, and the
## seed protocol end to end -> outputs/bench/train.json (takes long on CPU; see README)
bench: install
	$(PY) -m ids_lightning.bench.train $(ARGS)

## out-of-core training at scale: IoT-23 captures repeated through prepare to ROWS rows, one epoch
## out of core (and in memory up to 2 million rows) -> outputs/bench/scale.json (docs/scale.md)
ROWS ?= 20000000
bench-scale: install
	$(PY) -m ids_lightning.bench.scale --rows $(ROWS) --output outputs/bench/scale.json $(ARGS)

## the GPU checks in one prepared script (about 14 minutes on an H100/H200): CUDA-only tests,
## make bench, bench-scale at 2 million rows, adversarial training at the official scale -> outputs/gpu/
gpu-check: install
	PY=$(PY) bash scripts/gpu_check.sh

## windows on unseen families: IoT-23 held-out captures x window 1/8/32 x 3 seeds, beside
## gradient boosting on flow and context features -> outputs/bench/windows.{json,csv} (about an hour on 2 CPUs)
bench-windows: install
	$(PY) -m ids_lightning.bench.windows $(ARGS)

## federated training (Flower): IoT-23 capture sites vs centralised vs local-only, FedAvg vs FedProx
## under Dirichlet(0.1), FedAvg vs median with a malicious site; 3 seeds -> outputs/federated/report.{csv,md}
bench-federated: install
	$(PY) -m ids_lightning.bench.federated $(ARGS)

## the NSL-KDD ablation: scaler, encoding, balancing, loss, width/depth, validation protocol and
## a seed ensemble, 3 seeds each, ranked by validation -> outputs/ablation/report.{csv,md}
## (about 2 hours on 2 CPUs), then the novelty scores compared on the base runs
ablation: install
	$(PY) -m ids_lightning.bench.ablation $(ARGS)

## the tournament of docs/protocols.md: CNN-LSTM, TabM, FT-Transformer and LightGBM chosen on
## by_family and on random validation (3 seeds), the choice written, then refit and tested
## -> outputs/tournament/tournament.{csv,md}; the full grid is for a GPU machine
tournament: install
	$(PY) -m ids_lightning.bench.tournament $(ARGS)

## what a 2-core CPU affords (docs/protocols.md): one configuration per net, 3 epochs, no FT-Transformer
tournament-cpu: install
	$(PY) -m ids_lightning.bench.tournament --grid cpu --epochs 3 --families cnn_lstm tabm lightgbm $(ARGS)
	$(PY) -m ids_lightning.bench.novelty outputs/ablation/base/s1 outputs/ablation/base/s2 outputs/ablation/base/s3 \
		--output outputs/ablation/novelty.json

## MLflow's wall-time cost beside TensorBoard (seeds=[1,2,3]) and the search pruner's saving of trial
## epochs -> outputs/bench/{mlflow_overhead,pruning}.json (about an hour on 2 CPUs)
bench-tracking: install
	$(PY) -m ids_lightning.bench.tracking $(ARGS)

## Zeek parser rows/s and peak memory vs pandas.read_csv -> outputs/bench/parse.json
bench-parse: install
	$(PY) -m ids_lightning.bench.parse $(ARGS)

## ONNX inference benchmark of a run folder: make edge-bench RUN=outputs/runs/<run>
edge-bench: install
	@test -n "$(RUN)" || { echo "usage: make edge-bench RUN=outputs/runs/<run folder>"; exit 2; }
	$(PY) -m ids_lightning.cli.edge_bench $(RUN) --torch $(ARGS)

## the sensor and the edge bench on arm64 (Raspberry Pi, Jetson) under qemu on this x86_64 box, compared
## with x86 record by record -> outputs/edge-arm64/report.json (docs/deployment.md); needs root and
## Debian's apt-get for the first build (about 6 minutes), under 5 minutes cached; ARGS=--full for all of KDDTest+
edge-arm64: install
	$(PY) -m tools.edge_arm64 $(ARGS)

## the edge extra's supported range at both ends on x86 (the oldest numpy and onnxruntime it admits, and
## the newest), compared with this environment record by record -> outputs/edge-range/report.json
edge-range: install
	$(PY) -m tools.edge_range $(ARGS)

## the seed paper's comparison (random split) and the honest protocols, 3 seeds, then the
## report (about a day on a 2-core CPU: see README); re-running continues where it stopped
reproduce: install
	$(PY) train.py -m experiment=paper hydra.sweep.dir=outputs/multirun/paper $(ARGS)
	$(PY) train.py -m experiment=official hydra.sweep.dir=outputs/multirun/official $(ARGS)
	$(PY) -m ids_lightning.cli.report outputs/multirun/paper outputs/multirun/official --ensembles --output outputs/multirun/report

QUICK = trainer.max_epochs=3 seed=1 callbacks.adversarial_eval.max_rows=1024 \
	callbacks.adversarial_eval.pgd_steps=5
## the same comparison with one seed and 3 epochs: a first look, not for conclusions
reproduce-quick: install
	$(PY) train.py -m experiment=paper $(QUICK) hydra.sweep.dir=outputs/multirun/quick_paper $(ARGS)
	$(PY) train.py -m experiment=official $(QUICK) hydra.sweep.dir=outputs/multirun/quick_official $(ARGS)
	$(PY) -m ids_lightning.cli.report outputs/multirun/quick_paper outputs/multirun/quick_official \
		--output outputs/multirun/quick_report

SWEEPS ?= outputs/multirun/paper outputs/multirun/official
## table and figures of finished sweeps: make report SWEEPS="outputs/multirun/<a> outputs/multirun/<b>"
report: install
	$(PY) -m ids_lightning.cli.report $(SWEEPS)

## the fault suite: every command run as a process against corrupt inputs, hostile run folders and sweeps,
## streams, bad settings and outputs (about 10 minutes on 2 CPUs) -> outputs/bench/chaos.json
chaos: install
	$(PY) -m tools.chaos $(ARGS)

## docs/results.md from the bench and report files in docs/results/ (see its manifest.json)
results: install
	$(PY) -m ids_lightning.bench.results

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
