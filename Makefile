# kforge's build, tests and tools. Every target installs what it needs, so a
# fresh Debian machine needs only Go and `make`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
GO ?= go
BIN := bin/kforge
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
DRY_RUN_DIR ?= $(CURDIR)/_output/dry-run
# The output of the last `make artifacts` run by run and e2e-local; its last
# line is the bundle's path.
ARTIFACTS_LOG := $(CURDIR)/_output/artifacts.log

.PHONY: all deps build run test fmt-check vet tidy-check unit-short unit e2e-local e2e-multinode e2e-ha e2e-upgrade e2e-versions e2e-resume e2e-resume-sample clean

all: build

## deps: install the Debian packages kforge's tests use (idempotent)
deps:
	@bash scripts/install-deps.sh
	@[ -f "$(KFORGE_SIGNING_KEY)" ] || { mkdir -p "$(dir $(KFORGE_SIGNING_KEY))" && chmod 700 "$(dir $(KFORGE_SIGNING_KEY))" && \
	  ssh-keygen -q -t ed25519 -N "" -C "kforge bundles built on this machine" -f "$(KFORGE_SIGNING_KEY)"; }

## build: build bin/kforge
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kforge

## run: set up and run kforge's main job on this machine: a single-node cluster from a bundle built here
run: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  ./$(BIN) up --local --bundle "$$bundle"

## dry-run: write everything kforge init would write under $(DRY_RUN_DIR), changing nothing
dry-run: build
	./$(BIN) init --dry-run --output-dir $(DRY_RUN_DIR)

## test: formatting, vet, tidy modules, the unit tests first (fast), then the artifacts, every unit and integration test, and the single-node, resume (a sample) and multi-node end to end tests
test: deps fmt-check vet tidy-check unit-short unit e2e-local e2e-expiry e2e-resume-sample e2e-multinode e2e-ha e2e-upgrade

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# kforge's module and the nested ones under scripts/ (their own go.mod).
GO_MODULES = $(shell git ls-files go.mod '*/go.mod' 2>/dev/null || find . -name go.mod)

## tidy-check: go.mod and go.sum of every module are as `go mod tidy` leaves them
tidy-check:
	@for mod in $(GO_MODULES); do \
	  dir=$$(dirname $$mod); \
	  if ! diff=$$(cd $$dir && $(GO) mod tidy -diff); then \
	    files=$$(sed -n 's|^diff current/\([^ ]*\) .*|\1|p' <<<"$$diff" | sed "s|^|$${dir#.}/|; s|^/||" | paste -sd ' ' -); \
	    if [ -z "$$files" ]; then echo "tidy-check: go mod tidy failed in $$dir"; exit 1; fi; \
	    echo "$$diff"; \
	    echo "tidy-check: $$files not tidy: run 'go mod tidy' in $$dir and commit $$files"; exit 1; \
	  fi; \
	done

## unit-short: the unit tests only (fakes, no built Kubernetes, containerd, sshd or root), in a minute or two
unit-short:
	$(GO) test -short -count=1 ./...
	cd scripts/artifacts/echo && $(GO) test -short -count=1 ./...
	cd scripts/artifacts/pause && $(GO) test -short -count=1 ./...

## unit: the Go tests (integration tests against real sshd, containerd and control-plane binaries included)
unit: artifacts-binaries
	$(GO) test -count=1 -timeout 20m ./...
	cd scripts/artifacts/echo && $(GO) test -count=1 ./...
	cd scripts/artifacts/pause && $(GO) test -count=1 ./...

# The integration tests run the cached binaries; building them is skipped
# when they are there.
artifacts-binaries:
	@bash scripts/build-artifacts.sh

## e2e-local: kforge up --local from the bundle, checked with this machine's kubectl, then reset (needs root; changes this machine)
e2e-local: deps build
	@CGO_ENABLED=0 $(GO) build -o bin/e2e-registry ./test/registry
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  BUNDLE="$$bundle" KFORGE=$(BIN) REGISTRY=bin/e2e-registry bash test/e2e/local.sh

## e2e-expiry: a cluster with two-minute certificates and certs.autoRenew: the job's command renews and records an Event; past expiry the cluster stops answering and certs renew all brings it back; reset removes the job (needs root; changes this machine)
e2e-expiry: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  BUNDLE="$$bundle" KFORGE=$(BIN) bash test/e2e/expiry.sh

## e2e-versions: the single-node end-to-end test once per supported Kubernetes version (v1.35.4, v1.36.3, v1.37.2), each from its own bundle, then `runtime: host` on this machine's Debian containerd 1.6 (v1.37.2 refused, v1.35.4 Ready); builds the versions not yet cached (not part of make test)
e2e-versions: deps build
	@mkdir -p _output && versions=$$(bash scripts/build-artifacts.sh --supported-versions) && \
	  $(MAKE) --no-print-directory artifacts KUBERNETES_VERSIONS="$$versions" | tee _output/artifacts-versions.log && \
	  for v in $$versions; do \
	    bundle=$$(grep "/kforge-bundle-$$v-" _output/artifacts-versions.log | tail -1) && [ -n "$$bundle" ] || { echo "no bundle for $$v" >&2; exit 1; }; \
	    start=$$(date +%s); \
	    BUNDLE="$$bundle" KUBERNETES_VERSION="$$v" KFORGE=$(BIN) bash test/e2e/local.sh || exit 1; \
	    echo "e2e-versions: $$v passed in $$(( $$(date +%s) - start ))s"; \
	  done && \
	  BUNDLE_OLD=$$(grep "/kforge-bundle-v1.35.4-" _output/artifacts-versions.log | tail -1) \
	  BUNDLE_NEW=$$(grep "/kforge-bundle-$$(bash scripts/build-artifacts.sh --default-version)-" _output/artifacts-versions.log | tail -1) \
	  KFORGE=$(BIN) bash test/e2e/runtime-host.sh

## e2e-multinode: 4 air-gapped machine containers (checked by scripts/machines/airgap-check.sh), kforge init -f over SSH with workers joined in parallel, checked with this machine's kubectl, then reset -f and machines-down
e2e-multinode: deps build
	@CGO_ENABLED=0 $(GO) build -o bin/e2e-registry ./test/registry
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  $(MAKE) --no-print-directory machines N=4 | tee _output/machines.log && cluster=$$(tail -1 _output/machines.log) && \
	  BUNDLE="$$bundle" CLUSTER="$$cluster" KFORGE=$(BIN) REGISTRY=bin/e2e-registry bash test/e2e/multinode.sh; rc=$$?; \
	  $(MAKE) --no-print-directory machines-down >/dev/null 2>&1; exit $$rc

## e2e-ha: 3 control planes (systemd machines, a virtual IP) and a worker: init -f, the etcd leader's machine stopped and started, a control plane removed and joined again, reset -f
e2e-ha: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  MACHINE_SYSTEMD="1 2 3" $(MAKE) --no-print-directory machines N=4 CONTROL_PLANES=3 | tee _output/machines.log && cluster=$$(tail -1 _output/machines.log) && \
	  BUNDLE="$$bundle" CLUSTER="$$cluster" KFORGE=$(BIN) bash test/e2e/ha.sh; rc=$$?; \
	  $(MAKE) --no-print-directory machines-down >/dev/null 2>&1; exit $$rc

## e2e-upgrade: a control plane and 2 workers built at the previous minor (v1.36.3): a broken upgrade rolled back, upgrade plan, upgrade apply to v1.37.2 with a client counting failed requests, a refused downgrade, upgrade rollback, reset -f; builds v1.36.3 when not cached
UPGRADE_FROM ?= v1.36.3
e2e-upgrade: deps build
	@mkdir -p _output && new=$$(bash scripts/build-artifacts.sh --default-version) && \
	  $(MAKE) --no-print-directory artifacts KUBERNETES_VERSIONS="$(UPGRADE_FROM) $$new" | tee _output/artifacts-upgrade.log && \
	  old_bundle=$$(grep "/kforge-bundle-$(UPGRADE_FROM)-" _output/artifacts-upgrade.log | tail -1) && new_bundle=$$(grep "/kforge-bundle-$$new-" _output/artifacts-upgrade.log | tail -1) && \
	  [ -n "$$old_bundle" ] && [ -n "$$new_bundle" ] || { echo "no bundle of $(UPGRADE_FROM) or $$new" >&2; exit 1; }; \
	  $(MAKE) --no-print-directory machines N=3 | tee _output/machines.log && cluster=$$(tail -1 _output/machines.log) && \
	  BUNDLE_OLD="$$old_bundle" BUNDLE_NEW="$$new_bundle" CLUSTER="$$cluster" KFORGE=$(BIN) bash test/e2e/upgrade.sh; rc=$$?; \
	  $(MAKE) --no-print-directory machines-down >/dev/null 2>&1; exit $$rc

## e2e-resume: kforge up --local and kforge reset killed with SIGKILL after every phase (and inside bundle and wait), each run again to success; init -f and join likewise on the machines
e2e-resume: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  BUNDLE="$$bundle" KFORGE=$(BIN) bash test/e2e/resume-local.sh && \
	  $(MAKE) --no-print-directory machines N=2 | tee _output/machines.log && cluster=$$(tail -1 _output/machines.log) && \
	  BUNDLE="$$bundle" CLUSTER="$$cluster" KFORGE=$(BIN) bash test/e2e/resume-multinode.sh; rc=$$?; \
	  $(MAKE) --no-print-directory machines-down >/dev/null 2>&1; exit $$rc

# The kill points of make e2e-resume that make test runs: the ones past the
# first writes and before the kubelet's service, inside bundle and wait,
# and two of reset's.
RESUME_SAMPLE ?= kubeconfig etcd control-plane/apiserver bundle images wait containers files

e2e-resume-sample: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  RESUME_SAMPLE="$(RESUME_SAMPLE)" BUNDLE="$$bundle" KFORGE=$(BIN) bash test/e2e/resume-local.sh

clean:
	rm -rf bin _output

-include scripts/artifacts.mk
-include scripts/machines.mk
-include bench/bench.mk
