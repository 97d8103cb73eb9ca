# One-command set-up (`make deps`) and one-command test (`make test`). Every target is idempotent.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/hubsettings
export HUBSETTINGS_CACHE := $(CACHE)
PYTEST_ARGS ?=
LINT_PATHS := $(wildcard operator tests bench hack)

.PHONY: deps venv postgres-server testenv-bin helm-bin kubectl-bin test test-unit test-integration test-e2e lint crd docs \
        generated bench bench-node bench-smoke e2e-kind testenv-up testenv-down clean kstatus-bin \
        node-deps image cluster-up cluster-down test-cluster monitoring-crds test-oldest-k8s \
        test-oldest-k8s-run

deps: venv postgres-server testenv-bin helm-bin kubectl-bin kstatus-bin monitoring-crds node-deps ## install everything the tests need

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	@touch $@

# PostgreSQL server binaries for the integration and e2e tiers (Debian's package), only if missing.
postgres-server:
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  echo "postgres: $$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n1 || command -v pg_ctl)"; \
	else \
	  echo "postgres: installing Debian's postgresql package"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q postgresql; \
	fi

# kube-apiserver + etcd built from the Kubernetes Go modules, cached under $(CACHE) (first build: minutes);
# also the oldest Kubernetes minor docs/compatibility.md claims, for the CRD tier (test-oldest-k8s).
OLDEST_KUBERNETES ?= v1.32.13
testenv-bin:
	@bash hack/build-testenv.sh
	@KUBERNETES_VERSION=$(OLDEST_KUBERNETES) bash hack/build-testenv.sh

helm-bin:
	@bash hack/install-helm.sh >/dev/null

# kstatus (sigs.k8s.io/cli-utils) + Flux-style CEL health checks for the GitOps e2e tests (hack/kstatus).
kstatus-bin:
	@bash hack/install-kstatus.sh >/dev/null

# The Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule) from its Go module, for the e2e
# server-side checks of the chart's monitoring toggles.
monitoring-crds:
	@bash hack/install-monitoring-crds.sh >/dev/null

# kubectl: the machine's if present, else built from k8s.io/kubectl through the Go module proxy.
kubectl-bin:
	@bash hack/install-kubectl.sh >/dev/null

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache  # the layering of docs/architecture.md
	$(PY) hack/deadcode.py  # vulture: no unused function, class, method or attribute in the package

# The README's test command. Unit + integration (real PostgreSQL) + e2e (real kube-apiserver + PostgreSQL).
test: deps lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-oldest-k8s-run

# The CRD tier (and reconcile on request) on the oldest Kubernetes minor claimed in docs/compatibility.md.
test-oldest-k8s: deps test-oldest-k8s-run

test-oldest-k8s-run:
	KUBERNETES_VERSION=$(OLDEST_KUBERNETES) $(VENV)/bin/pytest tests/e2e/test_crd_apiserver.py \
	  tests/e2e/test_reconcile_request.py $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv postgres-server
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

test-e2e: deps
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

# Regenerate every generated file (the CRD, the chart's copy of it, the field reference).
generated crd: venv
	$(VENV)/bin/hubsettings crd > crds/hubsettings.yaml
	@if [ -d helm/hubsettings-operator/files/crds ]; then cp crds/hubsettings.yaml helm/hubsettings-operator/files/crds/hubsettings.yaml; fi
	$(VENV)/bin/hubsettings docs > docs/crd-reference.md

docs: generated

bench: deps
	$(PY) -m bench
	$(PY) -m bench.validation

# The operator in pods (the node tier; root): kubectl patch -> row committed, failover.
bench-node: deps
	$(PY) -m bench.node_tier

bench-smoke: deps
	$(PY) -m bench --smoke

e2e-kind:
	bash hack/e2e-kind.sh

testenv-up: testenv-bin venv
	@$(PY) -m tests.support.kubeenv up

testenv-down:
	@$(PY) -m tests.support.kubeenv down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The node tier (docs/node-tier.md): Debian's containerd, runc, CNI plugins, iptables, socat, debootstrap if
# missing; kubelet, kube-controller-manager, kube-scheduler from the API server's Kubernetes version, and the
# images (all cached: a warm run only checks).
node-deps: testenv-bin venv
	@bash hack/install-node-packages.sh
	@bash hack/build-testenv.sh --node
	@bash hack/build-image.sh >/dev/null

# The operator image (and the Hub stand-in and pause images) without a registry, loaded into the local runtimes
# found (the node tier's containerd, kind, Docker); prints the archive to load or push elsewhere.
image:
	@bash hack/build-image.sh --load

# A one-node cluster where pods run (containerd + kubelet), images loaded; prints `export KUBECONFIG=...`.
cluster-up: node-deps venv
	@$(PY) -m tests.support.nodeenv up

cluster-down:
	@$(PY) -m tests.support.nodeenv down

test-cluster: deps
	$(VENV)/bin/pytest tests/cluster $(PYTEST_ARGS)
