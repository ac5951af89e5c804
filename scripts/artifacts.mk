# kforge's from-source artifact build (included by the main Makefile).
# Binaries land in $(KFORGE_CACHE) (default ~/.cache/kforge), keyed by
# version; a run that finds everything built takes seconds.
# ARTIFACTS=... builds a subset, e.g. `make artifacts ARTIFACTS="etcd pause"`.
ARTIFACTS ?=

.PHONY: artifacts artifacts-list

## artifacts: build the pinned node binaries (kubernetes, etcd, coredns, pause, kube-router, cni-plugins) into the cache
artifacts:
	@bash scripts/build-artifacts.sh $(ARTIFACTS)

## artifacts-list: print the cached binaries' paths (fails if any is missing)
artifacts-list:
	@bash scripts/build-artifacts.sh --list $(ARTIFACTS)
