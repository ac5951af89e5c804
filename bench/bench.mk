# kforge's benchmark against kubeadm (included by the main Makefile).
# BENCH_N runs of each tool after a warm-up of each; see bench/bench.sh and
# docs/performance.md.
BENCH_N ?= 5

.PHONY: bench

## bench: kubeadm init vs kforge init on this machine (BENCH_N=5 each), then kforge up --local to usable; prints a table and `init ratio kforge/kubeadm` last (needs root; changes this machine)
bench: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  bins=$$(bash scripts/build-artifacts.sh --list kubernetes) && \
	  BUNDLE="$$bundle" KUBEADM="$$(grep '/kubeadm$$' <<<"$$bins")" KUBECTL_BUILT="$$(grep '/kubectl$$' <<<"$$bins")" \
	  KFORGE=$(BIN) BENCH_N=$(BENCH_N) bash bench/bench.sh

.PHONY: bench-ha

## bench-ha: on 3 control planes with a virtual IP and a worker, how long the API is unavailable to a pod on the worker when the etcd leader's machine stops, and how long joining a control plane takes; prints `ha: ...` last (not part of make test)
bench-ha: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  MACHINE_SYSTEMD="1 2 3" $(MAKE) --no-print-directory machines N=4 CONTROL_PLANES=3 | tee _output/machines.log && cluster=$$(tail -1 _output/machines.log) && \
	  BUNDLE="$$bundle" CLUSTER="$$cluster" KFORGE=$(BIN) bash bench/ha.sh; rc=$$?; \
	  $(MAKE) --no-print-directory machines-down >/dev/null 2>&1; exit $$rc

.PHONY: cis kube-bench

## kube-bench: build kube-bench (KUBE_BENCH_VERSION, default v0.15.6) from its Go module into the cache; prints its path last
kube-bench:
	@bash scripts/build-kube-bench.sh

## cis: the CIS Kubernetes Benchmark cis-1.12 with kube-bench against kforge up --local on this machine, then reset; prints each FAIL and the counts last (needs root; changes this machine; not part of make test)
cis: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  kb=$$(bash scripts/build-kube-bench.sh | tail -1) && \
	  BUNDLE="$$bundle" KFORGE=$(BIN) KUBE_BENCH="$$kb" CIS_WARNINGS=_output/cis-warnings.txt bash test/cis.sh

.PHONY: bench-join

## bench-join: joins N = 1, 2, 4 and 6 fresh workers (BENCH_JOIN_NS) to a control plane on the test machines, one N after another; prints the wall time, this machine's bytes sent and each worker's bytes received per N, and `join scale T(6)/T(1): X.XX operator bytes B(6)/B(1): Y.YY` last (not part of make test)
bench-join: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  $(MAKE) --no-print-directory machines-image >/dev/null && \
	  BUNDLE="$$bundle" KFORGE=$(BIN) bash bench/join.sh; rc=$$?; \
	  $(MAKE) --no-print-directory machines-down >/dev/null 2>&1; exit $$rc

.PHONY: bench-up

## bench-up: only `kforge up --local` from a reset machine to a Service answering by name from a pod, BENCH_N times, with the steps between the workload's creation and the answer; prints `up usable: X.XXs` (the median) last (needs root; changes this machine; not part of make test)
bench-up: deps build
	@mkdir -p _output && $(MAKE) --no-print-directory artifacts | tee $(ARTIFACTS_LOG) && bundle=$$(tail -1 $(ARTIFACTS_LOG)) && \
	  BUNDLE="$$bundle" KFORGE=$(BIN) BENCH_N=$(BENCH_N) BENCH_ONLY=up bash bench/bench.sh
