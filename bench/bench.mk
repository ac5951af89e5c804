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
