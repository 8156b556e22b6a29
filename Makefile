# churnflow — `make run` (install, default data, whole pipeline) and `make test` (install, whole test suite).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 3000
MLFLOW_PORT ?= 5000
PYTEST_ARGS ?=

# Tools that write under ~ write inside the project instead (CI and fresh clones stay self-contained).
export BENTOML_HOME ?= $(CURDIR)/.bentoml
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
export IPYTHONDIR ?= $(CURDIR)/.cache/ipython
export JUPYTER_DATA_DIR ?= $(CURDIR)/.cache/jupyter
export PYSPARK_PYTHON ?= $(CURDIR)/$(PY)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install data params run repro exp test test-fast lint format bench serve build mlflow-ui report lock clean browser

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@command -v uv >/dev/null 2>&1 || test -x $(BIN)/uv || $(PY) -m pip install --quiet uv
	@UV=$$(command -v uv || echo $(BIN)/uv); \
	  $$UV pip sync --python $(PY) --require-hashes --compile-bytecode requirements.lock && \
	  $$UV pip install --python $(PY) --no-deps --compile-bytecode -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the hash-pinned dependencies (uv pip sync requirements.lock)

# make run DATA=full: the data option conf/data/$(DATA).yaml, simulated into its own folder (data.raw_dir, e.g.
# worlds/full) when absent, then run as a DVC experiment with the budgets of conf/budget/$(DATA).yaml if any
DATA ?=
DATA_ARGS = $(if $(DATA),-S data=$(DATA) $(if $(wildcard conf/budget/$(DATA).yaml),-S +budget=$(DATA)))

data: install ## Create the world in data.raw_dir with the simulator if that folder is empty (DATA=full: worlds/full)
	$(PY) stages/bootstrap_data.py $(if $(DATA),--override data=$(DATA) $(ARGS),--params params.yaml)

params: install ## Compose conf/ into params.yaml (as `dvc exp run` does)
	$(PY) -c "from churnflow.config.params import write_params; write_params('conf', 'params.yaml')"

run: data ## Install, create the data if absent, run the whole pipeline (dvc repro; DATA=full: dvc exp run -S data=full)
	$(if $(DATA),$(BIN)/dvc exp run $(DATA_ARGS) $(ARGS),$(BIN)/dvc repro)

repro: install ## dvc repro only
	$(BIN)/dvc repro

ARGS ?=
exp: install ## An experiment with the project's venv on PATH: make exp ARGS="-S model=xgboost -S tune.n_trials=5"
	$(BIN)/dvc exp run $(ARGS)

browser: ## Debian's chromium for the headless-browser checks (installed with apt-get when root; else those tests skip)
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    && echo "installed chromium"; } || echo "apt-get could not install chromium: the browser tests will skip"; \
	else echo "no chromium, and it cannot be installed here (needs apt-get as root): the browser tests will skip"; fi

test: install browser ## Install and run the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install ## The test suite without the slow end-to-end tests
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: install ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install ## Run every benchmark in benchmarks/ (heavy: simulates the full preset)
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

serve: install ## Serve the packaged champion with BentoML on $(HOST):$(PORT)
	$(BIN)/bentoml serve churnflow.serving.service:ChurnService --host $(HOST) --port $(PORT)

build: install ## Build the Bento (no Docker needed)
	$(BIN)/bentoml build

REDIS_PORT ?= 6379
.PHONY: serve-dev redis docker-build bench-serving bench-scale

serve-dev: install ## Serve WITHOUT API keys (CHURNFLOW_INSECURE_DEV=1: local development only)
	CHURNFLOW_INSECURE_DEV=1 $(BIN)/bentoml serve churnflow.serving.service:ChurnService --host $(HOST) --port $(PORT)

redis: ## Start redis-server on 127.0.0.1:$(REDIS_PORT) (rate limits shared by several workers)
	@command -v redis-server >/dev/null 2>&1 || { echo "redis: redis-server is not installed (Debian: apt-get install redis-server)" >&2; exit 2; }
	redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --save '' --appendonly no --daemonize yes
	@echo "now: CHURNFLOW_RATE_LIMIT_STORAGE=redis://127.0.0.1:$(REDIS_PORT) CHURNFLOW_WORKERS=2 make serve"

docker-build: build ## bentoml containerize the Bento (needs a Docker engine; says so clearly when none runs)
	@if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then \
	  echo "docker-build: NO DOCKER ENGINE reachable on this machine ('docker info' failed). The Bento is built" \
	    "(bentoml list shows churn_service) but cannot be containerized here: run 'make docker-build' where" \
	    "a Docker engine runs." >&2; \
	  exit 2; \
	fi
	$(BIN)/bentoml containerize churn_service:latest --image-tag churn_service:latest

bench-scale: install ## Scaling benchmark: whole pipeline on small x1/x2/x4/x8 and full (heavy; docs/scaling.md)
	$(PY) benchmarks/bench_scale.py pipeline
	$(PY) benchmarks/bench_scale.py training
	$(PY) benchmarks/bench_scale.py spark --worlds small
	$(PY) benchmarks/bench_scale.py report

bench-serving: install ## Serving benchmark (latency, throughput, batch, schemathesis) → benchmarks/results/serving.json
	$(PY) benchmarks/bench_serving.py

mlflow-ui: install ## MLflow UI on 127.0.0.1 for the local tracking database
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port $(MLFLOW_PORT)

report: install ## Re-run the report notebooks (dvc repro report)
	$(BIN)/dvc repro report

lock: ## Re-resolve requirements.lock from pyproject.toml (hash-pinned, no index URLs)
	@command -v uv >/dev/null 2>&1 || $(PY) -m pip install --quiet uv
	@UV=$$(command -v uv || echo $(BIN)/uv); \
	  $$UV pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements.lock

clean: ## Remove pipeline outputs and caches (keeps data/ and .venv)
	rm -rf artifacts reports mlflow.db mlruns .bentoml .cache .pytest_cache .ruff_cache spark-warehouse
