# jobrelay — every entry point for humans and CI. `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
export JOBRELAY_CACHE ?= $(HOME)/.cache/jobrelay
CARGO ?= cargo
# One control plane for the whole integration run (test binaries reuse it through JOBRELAY_TEST_KUBECONFIG).
TESTENV_DIR ?= $(or $(TMPDIR),/tmp)/jobrelay-make-testenv-$(shell id -u)
NODE_DIR ?= $(or $(TMPDIR),/tmp)/jobrelay-make-node-$(shell id -u)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEMO_DIR ?= $(or $(TMPDIR),/tmp)/jobrelay-demo
CRD_DIRS := crds charts/jobrelay/files/crds

.PHONY: help deps build test fmt-check clippy unit crds crds-check integration image test-node testenv-up testenv-down demo demo-down bench

help:
	@echo "make demo      local control plane + simulator + operator, run the examples to completion"
	@echo "make test      fmt, clippy, unit tests, CRD drift check, integration tests on a real control plane"
	@echo "make bench     the operator under load: submit/finish times, requests per job, memory"
	@echo "make image     the operator's OCI image (static binary, no container engine) in target/image/"
	@echo "make test-node the chart installed on a real one-node cluster with the image (part of make test)"
	@echo "make crds      regenerate crds/ (and the chart's CRDs) with jobrelay crdgen"
	@echo "make testenv-up / testenv-down   start / stop a control plane by hand"

deps:
	@hack/deps

build: deps
	$(CARGO) build --locked

test: deps fmt-check clippy unit crds-check integration test-node

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

# The OCI archive of the operator (and simulator): target/image/jobrelay-<version>.oci.tar.
image: deps
	@hack/image >/dev/null

# A real node (containerd, kubelet, kube-proxy, …) beside its own control plane, with the image imported
# under the chart's default reference; the in-cluster tests run one at a time (one node per machine).
test-node: image
	@set -e; hack/testenv/down "$(NODE_DIR)"; \
	eval "$$(hack/testenv/up --dir "$(NODE_DIR)" --node --image target/image/jobrelay-$(VERSION).oci.tar)"; \
	trap 'hack/testenv/down "$(NODE_DIR)"' EXIT; \
	JOBRELAY_TEST_KUBECONFIG="$$KUBECONFIG" JOBRELAY_TEST_NODE="$$JOBRELAY_TEST_NODE" \
	  $(CARGO) test --locked --test in_cluster -- --ignored --test-threads=1

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
