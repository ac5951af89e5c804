#!/usr/bin/env bash
# The CIS Kubernetes Benchmark (kube-bench's cis-1.12, every target) against
# a cluster `kforge up --local` builds on this machine from $BUNDLE, then
# reset. Prints each FAIL, then `cis-1.12: P pass, F fail, W warn` last.
# KEEP=1 keeps the cluster. Needs root; changes this machine.
set -euo pipefail
: "${BUNDLE:?set BUNDLE to a kforge bundle}" "${KFORGE:?set KFORGE to the kforge binary}" "${KUBE_BENCH:?set KUBE_BENCH to the kube-bench binary}"
out=$(mktemp -d)
cleanup() {
  [ "${KEEP:-}" = 1 ] || "$KFORGE" reset --force >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
"$KFORGE" reset --force >/dev/null 2>&1 || true
"$KFORGE" up --local --bundle "$BUNDLE" --kubeconfig "$out/kubeconfig" >"$out/up.log" 2>&1 || { cat "$out/up.log"; echo "cis: kforge up --local failed" >&2; exit 1; }
# kube-bench reads cfg/ beside its binary; it checks the processes and files
# of this machine's control plane and node.
timeout 300 "$KUBE_BENCH" run --config-dir "$(dirname "$KUBE_BENCH")/cfg" --benchmark cis-1.12 --json >"$out/report.json" 2>"$out/kube-bench.log" ||
  { tail -20 "$out/kube-bench.log"; echo "cis: kube-bench failed" >&2; exit 1; }
jq -r '.Controls[].tests[].results[] | select(.status == "FAIL") | "FAIL \(.test_number) \(.test_desc)"' "$out/report.json"
jq -r '.Controls[].tests[].results[] | select(.status == "WARN") | "WARN \(.test_number) \(.test_desc)"' "$out/report.json" >"${CIS_WARNINGS:-/dev/null}"
jq -r '"cis-1.12: \(.Totals.total_pass) pass, \(.Totals.total_fail) fail, \(.Totals.total_warn) warn"' "$out/report.json"
