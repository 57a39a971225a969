# jobrelay — every entry point for humans and CI. `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
export JOBRELAY_CACHE ?= $(HOME)/.cache/jobrelay
CARGO ?= cargo
# One control plane for the whole integration run (test binaries reuse it through JOBRELAY_TEST_KUBECONFIG).
TESTENV_DIR ?= $(or $(TMPDIR),/tmp)/jobrelay-make-testenv-$(shell id -u)
DEMO_DIR ?= $(or $(TMPDIR),/tmp)/jobrelay-demo
CRD_DIRS := crds charts/jobrelay/files/crds

.PHONY: help deps build test fmt-check clippy unit crds crds-check integration testenv-up testenv-down demo demo-down bench

help:
	@echo "make demo      local control plane + simulator + operator, run the examples to completion"
	@echo "make test      fmt, clippy, unit tests, CRD drift check, integration tests on a real control plane"
	@echo "make bench     the operator under load: submit/finish times, requests per job, memory"
	@echo "make crds      regenerate crds/ (and the chart's CRDs) with jobrelay crdgen"
	@echo "make testenv-up / testenv-down   start / stop a control plane by hand"

deps:
	@hack/deps

build: deps
	$(CARGO) build --locked

test: deps fmt-check clippy unit crds-check integration

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	$(CARGO) test --locked --lib --bins

crds:
	$(CARGO) run --locked --quiet -- crdgen $(addprefix --out-dir ,$(CRD_DIRS))

crds-check:
	$(CARGO) run --locked --quiet -- crdgen --check $(addprefix --out-dir ,$(CRD_DIRS))

integration:
	@set -e; hack/testenv/down "$(TESTENV_DIR)"; \
	eval "$$(hack/testenv/up --dir "$(TESTENV_DIR)" --keycloak)"; \
	trap 'hack/testenv/down "$(TESTENV_DIR)"' EXIT; \
	JOBRELAY_TEST_KUBECONFIG="$$KUBECONFIG" JOBRELAY_TEST_KEYCLOAK_ENV="$$JOBRELAY_TEST_KEYCLOAK_ENV" \
	  $(CARGO) test --locked --test "*" -- --test-threads=4

testenv-up: deps
	@hack/testenv/up --dir "$(TESTENV_DIR)"

testenv-down:
	@hack/testenv/down "$(TESTENV_DIR)"

# The operator under load (release build), on its own control plane; prints a table.
bench: deps
	@set -e; hack/testenv/down "$(TESTENV_DIR)-bench"; \
	eval "$$(hack/testenv/up --dir "$(TESTENV_DIR)-bench")"; \
	trap 'hack/testenv/down "$(TESTENV_DIR)-bench"' EXIT; \
	JOBRELAY_TEST_KUBECONFIG="$$KUBECONFIG" $(CARGO) bench --locked --bench operator

demo: deps
	@hack/demo --dir "$(DEMO_DIR)"

demo-down:
	@hack/testenv/down "$(DEMO_DIR)"
