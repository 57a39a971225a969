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

.PHONY: help deps build test fmt-check clippy unit deny fuzz crds crds-check integration image test-node testenv-up testenv-down demo demo-down bench bench-node bench-alt-image bench-smoke

help:
	@echo "make demo      local control plane + simulator + operator, run the examples to completion"
	@echo "make test      fmt, clippy, unit tests, CRD drift check, integration tests on a real control plane"
	@echo "make bench     jobrelay against the physical limit and the batch/v1 Job alternative (QUICK=1: 1/10 scale)"
	@echo "make fuzz      the parsers' property tests with many cases (PROPTEST_CASES=20000)"
	@echo "make deny      cargo-deny: licenses, bans, sources (and advisories when reachable)"
	@echo "make image     the operator's OCI image (static binary, no container engine) in target/image/"
	@echo "make test-node the chart installed on a real one-node cluster with the image (part of make test)"
	@echo "make crds      regenerate crds/ (and the chart's CRDs) with jobrelay crdgen"
	@echo "make testenv-up / testenv-down   start / stop a control plane by hand"

deps:
	@hack/deps

build: deps
	$(CARGO) build --locked

test: deps fmt-check clippy unit deny crds-check integration test-node bench-smoke

# make bench QUICK=1 as a smoke check of the bench itself: figures are printed, no threshold is applied.
bench-smoke:
	@$(MAKE) --no-print-directory bench QUICK=1

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	$(CARGO) test --locked --lib --bins

# Licenses, banned crates and sources (deny.toml); advisories when their database can be fetched.
deny: deps
	@hack/deny

# The parsers' property tests with many cases (a short run is part of `cargo test`).
PROPTEST_CASES ?= 20000
fuzz:
	PROPTEST_CASES=$(PROPTEST_CASES) $(CARGO) test --locked --test fuzz_parsers

crds:
	$(CARGO) run --locked --quiet -- crdgen $(addprefix --out-dir ,$(CRD_DIRS))

crds-check:
	$(CARGO) run --locked --quiet -- crdgen --check $(addprefix --out-dir ,$(CRD_DIRS))

integration:
	@set -e; hack/testenv/down "$(TESTENV_DIR)"; \
	eval "$$(hack/testenv/up --dir "$(TESTENV_DIR)" --keycloak --kueue)"; \
	trap 'hack/testenv/down "$(TESTENV_DIR)"' EXIT; \
	JOBRELAY_TEST_KUBECONFIG="$$KUBECONFIG" JOBRELAY_TEST_KEYCLOAK_ENV="$$JOBRELAY_TEST_KEYCLOAK_ENV" \
	  JOBRELAY_TEST_KUEUE="$$JOBRELAY_TEST_KUEUE" $(CARGO) test --locked --no-fail-fast --test "*" -- --test-threads=4

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

# Issue 12: jobrelay against the physical limit and against batch/v1 Jobs (benches/operator.rs). Part one on
# its own loopback control plane with an audit log; part two (the alternative) on a one-node cluster, which
# waits for the node lock (BENCH_NODE_WAIT seconds) and is skipped with a note if it stays held. Prints a
# table and writes target/bench/results.json. QUICK=1: everything at 1/10 scale.
QUICK ?=
BENCH_DIR ?= $(TESTENV_DIR)-bench
BENCH_NODE_DIR ?= $(NODE_DIR)-bench
BENCH_NODE_WAIT ?= $(if $(QUICK),60,600)
ALT_IMAGE := target/bench/alt-client.oci.tar
# The loopback part runs the image's binary (static musl, as the chart installs it) at the log level
# users get; the node part installs the image itself.
STATIC_BIN = $${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/static/jobrelay
bench: deps image
	@set -e; hack/testenv/down "$(BENCH_DIR)"; \
	eval "$$(hack/testenv/up --dir "$(BENCH_DIR)" --audit)"; \
	trap 'hack/testenv/down "$(BENCH_DIR)"' EXIT; \
	JOBRELAY_TEST_KUBECONFIG="$$KUBECONFIG" JOBRELAY_TEST_AUDIT_LOG="$$JOBRELAY_TEST_AUDIT_LOG" QUICK="$(QUICK)" \
	  JOBRELAY_TEST_OPERATOR_BIN="$$(realpath $(STATIC_BIN))" JOBRELAY_TEST_OPERATOR_LOG=default \
	  BENCH_PART=loopback $(CARGO) bench --locked --bench operator
	@$(MAKE) --no-print-directory bench-node

bench-node: image bench-alt-image
	@set -e; skip=""; \
	if [ "$$(id -u)" != 0 ]; then skip="the node needs root"; else \
	  for i in $$(seq 1 $$(( $(BENCH_NODE_WAIT) / 5 ))); do flock -n /run/lock/jobrelay-node.lock true && break; \
	    [ $$i = 1 ] && echo "bench: waiting up to $(BENCH_NODE_WAIT) s for the node lock (held by $$(cat /run/lock/jobrelay-node.lock))" >&2; sleep 5; done; \
	  hack/testenv/down "$(BENCH_NODE_DIR)"; \
	  if env_out=$$(hack/testenv/up --dir "$(BENCH_NODE_DIR)" --node --audit --image target/image/jobrelay-$(VERSION).oci.tar --image $(ALT_IMAGE)); then \
	    eval "$$env_out"; trap 'hack/testenv/down "$(BENCH_NODE_DIR)"' EXIT; \
	  else skip="hack/testenv/up --node failed (node lock held by $$(cat /run/lock/jobrelay-node.lock 2>/dev/null)?)"; fi; \
	fi; \
	[ -z "$$skip" ] || echo "bench: NOTE: the alternative (scenario 8) is skipped: $$skip" >&2; \
	JOBRELAY_TEST_KUBECONFIG="$${KUBECONFIG:-}" JOBRELAY_TEST_NODE="$${JOBRELAY_TEST_NODE:-}" \
	  JOBRELAY_TEST_AUDIT_LOG="$${JOBRELAY_TEST_AUDIT_LOG:-}" QUICK="$(QUICK)" BENCH_PART=node BENCH_NODE_SKIPPED="$$skip" \
	  $(CARGO) bench --locked --bench operator

# The alternative's client (benches/alt-client: Go, standard library only, static) as an OCI archive.
bench-alt-image:
	@set -e; root=target/bench/alt-client/rootfs; rm -rf "$$root"; mkdir -p "$$root"; \
	(cd benches/alt-client && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath go build -ldflags='-s -w' -o "$(CURDIR)/$$root/alt-client" .); \
	hack/oci-archive --rootfs "$$root" --ref docker.io/library/jobrelay-alt-client:bench --out $(ALT_IMAGE) \
	  --entrypoint /alt-client --user 65532:65532 >/dev/null

demo: deps
	@hack/demo --dir "$(DEMO_DIR)"

demo-down:
	@hack/testenv/down "$(DEMO_DIR)"
