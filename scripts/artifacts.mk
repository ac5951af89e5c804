# kforge's from-source artifact build (included by the main Makefile).
# Binaries land in $(KFORGE_CACHE) (default ~/.cache/kforge), keyed by
# version; then the images are built from them and packed with the node
# binaries into a bundle, both keyed by content. A run that finds everything
# built takes seconds. The last line `make artifacts` prints is the bundle's
# path.
# ARTIFACTS=... builds a subset of the binaries and no bundle, e.g.
# `make artifacts ARTIFACTS="etcd pause"`.
# KUBERNETES_VERSIONS="v1.36.3 v1.37.2" builds those versions, one bundle
# each (printed in that order); the default is the newest supported.
ARTIFACTS ?=
KUBERNETES_VERSIONS ?=
export KUBERNETES_VERSIONS
KFORGE_CACHE ?= $(HOME)/.cache/kforge
export KFORGE_CACHE
# make artifacts signs its bundles with this key (made by make deps); every
# kforge the Makefile runs trusts its public half.
KFORGE_SIGNING_KEY ?= $(KFORGE_CACHE)/signing/bundle_ed25519
export KFORGE_TRUSTED_KEYS ?= $(KFORGE_SIGNING_KEY).pub
ECHO_BIN := $(KFORGE_CACHE)/bin/echo/v1/echo
ECHO_SRC := $(filter-out %_test.go,$(wildcard scripts/artifacts/echo/*.go)) scripts/artifacts/echo/go.mod

.PHONY: artifacts artifacts-list bundle

## artifacts: build the pinned binaries (kubernetes, etcd, coredns, pause, kube-router, cni-plugins, containerd, runc, crictl), the images and the bundle into the cache; prints the bundle's path last (KUBERNETES_VERSIONS="v1.36.3 v1.37.2": one bundle per version)
artifacts:
	@bash scripts/build-artifacts.sh $(ARTIFACTS)
ifeq ($(strip $(ARTIFACTS)),)
	@$(MAKE) --no-print-directory bundle
endif

## bundle: build the images and the bundle (one per KUBERNETES_VERSIONS) from binaries already in the cache; prints the bundles' paths last
bundle: $(ECHO_BIN)
	@mkdir -p _output && CGO_ENABLED=0 $(GO) build -o _output/build-bundle ./scripts/build-bundle && \
	  for v in $${KUBERNETES_VERSIONS:-$$(bash scripts/build-artifacts.sh --default-version)}; do \
	    _output/build-bundle -cache "$(KFORGE_CACHE)" -sign-key "$(KFORGE_SIGNING_KEY)" -kubernetes-version "$$v" || exit 1; \
	  done

# The web server of the kforge.dev/echo:v1 test image.
$(ECHO_BIN): $(ECHO_SRC)
	@mkdir -p $(dir $@)
	@cd scripts/artifacts/echo && CGO_ENABLED=0 GOFLAGS=-buildvcs=false $(GO) build -trimpath -ldflags "-s -w" -o "$@.tmp" . && mv "$@.tmp" "$@"
	@echo "echo         v1       built"

## artifacts-list: print the cached binaries' paths (fails if any is missing)
artifacts-list:
	@bash scripts/build-artifacts.sh --list $(ARTIFACTS)
