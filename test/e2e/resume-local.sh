#!/usr/bin/env bash
# kforge's resume test on one node (part of make e2e-resume): `kforge up
# --local` is killed with SIGKILL right after each of its phases ends (and
# once in the middle of the bundle and wait phases), then run again, which
# must give a Ready node with CoreDNS available; `kforge reset` is killed
# after each of its phases, then run again, which must leave nothing.
# RESUME_SAMPLE="phase phase ..." limits the kill points (make test runs a
# sample). It changes this machine: it needs root. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/e2e/killat.sh

KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE=${BUNDLE:?set BUNDLE to the path make artifacts prints}
export KUBECONFIG=$(mktemp -d)/config
T=(timeout -s KILL 600)
UP=("$KFORGE" up --local --bundle "$BUNDLE" --kubeconfig "$KUBECONFIG")
RESET=("$KFORGE" reset --force --kubeconfig "$KUBECONFIG")

log() { printf '\n=== %s\n' "$*"; }
k() { "$KUBECTL" --request-timeout=20s "$@"; }
fail() {
  printf 'e2e-resume FAILED: %s\n' "$*" >&2
  set +e
  k get nodes; k get pods -A
  tail -20 /var/log/kforge/kubelet.log
  exit 1
}
cleanup() { local rc=$?; "${RESET[@]}" >/dev/null 2>&1 || true; exit $rc; }
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root"
exec 8>/run/kforge-node.lock
flock -w 1800 8 || fail "another kforge e2e or bench holds /run/kforge-node.lock"
command -v jq >/dev/null || fail "no jq (make deps installs it)"

healthy() {
  k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "$1: node not Ready"
  k -n kube-system wait --for=condition=Available deployment/coredns --timeout=120s >/dev/null || fail "$1: CoreDNS not available"
}

clean() {
  local d left
  for d in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/cni/net.d; do
    left=$(find "$d" -mindepth 1 2>/dev/null | head -5 || true)
    [ -z "$left" ] || fail "$1: reset left files in $d: $left"
  done
  [ ! -e /var/lib/kforge/run.json ] || fail "$1: reset left the run record"
  if ss -Hltn | awk '{print $4}' | grep -E ':(6443|2379|2380|10250)$' >/dev/null; then fail "$1: reset left a listener"; fi
  if pgrep -x kubelet >/dev/null; then fail "$1: reset left a kubelet"; fi
  if iptables-save | grep 'KUBE-' >/dev/null; then fail "$1: reset left KUBE- chains"; fi
}

sampled() { [ -z "${RESUME_SAMPLE:-}" ] || [[ " $RESUME_SAMPLE " == *" $1 "* ]]; }

"${RESET[@]}" >/dev/null
log "the phases of up and reset"
mapfile -t up_phases < <(phases_of "${UP[@]}" | awk '{print $2}')
healthy "first up"
mapfile -t reset_phases < <(phases_of "${RESET[@]}" | awk '{print $2}')
clean "first reset"
echo "up: ${up_phases[*]}"
echo "reset: ${reset_phases[*]}"
[ "${#up_phases[@]}" -gt 10 ] && [ "${#reset_phases[@]}" -gt 3 ] || fail "too few phases seen"

# Kill points: after each phase's end, and in the middle of bundle and wait.
mapfile -t points < <(kill_points 0.3 "${up_phases[@]}")

start=$SECONDS; ok=0; n=0
for pt in "${points[@]}"; do
  IFS=: read -r ev phase delay <<<"$pt"
  sampled "$phase" || continue
  n=$((n + 1))
  t0=$SECONDS
  killat "$ev" "$phase" "" "$delay" -- "${UP[@]}" || fail "up ended before the kill at $ev $phase"
  "${T[@]}" "${UP[@]}" >/tmp/kforge-resume.log 2>&1 || { cat /tmp/kforge-resume.log; fail "up after a kill at $ev $phase +${delay}s"; }
  healthy "up after a kill at $ev $phase"
  ok=$((ok + 1))
  echo "up killed at $ev $phase +${delay}s: resumed in $((SECONDS - t0))s"
  "${T[@]}" "${RESET[@]}" >/dev/null || fail "reset after the kill at $phase"
done
UP_RESULT="resume: up --local $ok/$n in $((SECONDS - start))s"

start=$SECONDS; ok=0; n=0
for phase in "${reset_phases[@]}"; do
  sampled "$phase" || continue
  n=$((n + 1))
  "${T[@]}" "${UP[@]}" >/dev/null 2>&1 || fail "up before killing reset"
  killat phase-end "$phase" "" 0 -- "${RESET[@]}" || fail "reset ended before the kill after $phase"
  "${T[@]}" "${RESET[@]}" >/dev/null 2>&1 || fail "reset after a kill after $phase"
  clean "reset after a kill after $phase"
  ok=$((ok + 1))
  echo "reset killed after $phase: resumed, nothing left"
done
RESET_RESULT="resume: reset $ok/$n in $((SECONDS - start))s"

printf '\n%s\n%s\n' "$UP_RESULT" "$RESET_RESULT"
