#!/usr/bin/env bash
# kforge's resume test on machines (part of make e2e-resume), with a control
# plane and a worker from `make machines N=2`:
#  - `kforge init -f` from this host is killed with SIGKILL right after each
#    phase ends, and inside bundle and wait, on the control plane and on the
#    worker (whose join runs over SSH: the kill drops the connection in the
#    middle of the join, which must stop it), then run again: both nodes
#    must be Ready with CoreDNS available;
#  - `kforge join` on the worker is killed (there) after each of its phases
#    and inside its bundle and wait, then run again: the node must be Ready.
# RESUME_SAMPLE="phase ..." limits the kill points. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/e2e/killat.sh

KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE=${BUNDLE:?set BUNDLE to the path make artifacts prints}
CLUSTER=${CLUSTER:?set CLUSTER to the cluster file make machines prints}
STATE=$(dirname "$CLUSTER")
export KUBECONFIG=$STATE/admin.conf
SSH=(ssh -F "$STATE/ssh_config" -o BatchMode=yes -o ConnectTimeout=5)
INIT=("$KFORGE" init -f "$CLUSTER" --bundle "$BUNDLE" --kubeconfig-out "$KUBECONFIG")
RESET=("$KFORGE" reset -f "$CLUSTER" --force)

log() { printf '\n=== %s\n' "$*"; }
k() { "$KUBECTL" --request-timeout=20s "$@"; }
# onw CMD runs CMD as root on the worker.
onw() { "${SSH[@]}" -l root "$WNAME" "$@"; }
fail() {
  printf 'e2e-resume (machines) FAILED: %s\n' "$*" >&2
  set +e
  k get nodes; k get pods -A
  exit 1
}
sampled() { [ -z "${RESUME_SAMPLE:-}" ] || [[ " $RESUME_SAMPLE " == *" $1 "* ]]; }

healthy() {
  [ "$(k get nodes -o name | wc -l)" = 2 ] || fail "$1: want 2 nodes, have $(k get nodes -o name | tr '\n' ' ')"
  k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "$1: nodes not Ready"
  k -n kube-system wait --for=condition=Available deployment/coredns --timeout=120s >/dev/null || fail "$1: CoreDNS not available"
}

CP=$(awk '$1 == "-" && $2 == "address:" {print $3}' "$CLUSTER" | sed -n 1p)
W=$(awk '$1 == "-" && $2 == "address:" {print $3}' "$CLUSTER" | sed -n 2p)
WNAME=$(awk '$1 == "name:" && NR > 7 {print $2}' "$CLUSTER" | sed -n 2p)
[ -n "$CP" ] && [ -n "$W" ] && [ -n "$WNAME" ] || fail "no control plane and worker in $CLUSTER"
command -v jq >/dev/null || fail "no jq (make deps installs it)"
T=(timeout -s KILL 600)

"${T[@]}" "${RESET[@]}" >/dev/null 2>&1 || true
log "the phases of init -f on $CP and on $W"
out=$("${T[@]}" "${INIT[@]}" -o json 2>/dev/null) || { echo "$out" | tail -20; fail "first init -f"; }
mapfile -t ends < <(jq -r 'select(.event == "phase-end" and (.error // "") == "") | "phase-end \(.host) \(.phase) 0"' <<<"$out")
healthy "first init -f"
[ "${#ends[@]}" -gt 15 ] || fail "too few phases in init's events"
points=("${ends[@]}")
for h in "$CP" "$W"; do points+=("phase-start $h bundle 3" "phase-start $h images 3" "phase-start $h wait 1"); done
echo "${#points[@]} kill points"

start=$SECONDS; ok=0; n=0
for pt in "${points[@]}"; do
  read -r ev h phase delay <<<"$pt"
  sampled "$phase" || continue
  n=$((n + 1)); t0=$SECONDS
  "${T[@]}" "${RESET[@]}" >/dev/null 2>&1 || fail "reset -f before the kill at $ev $h $phase"
  # Only this kforge is killed: a join running on the worker must stop
  # by itself when its SSH connection drops.
  killat "$ev" "$phase" "$h" "$delay" -- "${INIT[@]}" || fail "init -f ended before the kill at $ev $h $phase"
  "${T[@]}" "${INIT[@]}" >"$STATE/resume.log" 2>&1 || { tail -30 "$STATE/resume.log"; fail "init -f after a kill at $ev $h $phase +${delay}s"; }
  healthy "init -f after a kill at $ev $h $phase"
  ok=$((ok + 1))
  echo "init -f killed at $ev $h $phase +${delay}s: resumed in $((SECONDS - t0))s"
done
INIT_RESULT="resume: init -f $ok/$n in $((SECONDS - start))s"

log "kforge join on $W, killed there"
# The join command of the cluster as it is now (each reset -f above made a
# new one), from init's events.
out=$("${T[@]}" "${INIT[@]}" -o json 2>/dev/null) || fail "init -f before the joins"
join=$(jq -r 'select(.event == "info") | .message' <<<"$out" | grep -m1 '^kforge join ') || fail "no join command in init's events"
read -r _ _ endpoint _ token _ hash <<<"$join"
JOIN=("${SSH[@]}" -l root "$WNAME" /var/lib/kforge/bin/kforge join "$endpoint" --token "$token" --discovery-token-ca-cert-hash "$hash" --bundle "/var/lib/kforge/bundles/$(basename "$BUNDLE")")
unjoin() {
  k drain "$1" --ignore-daemonsets --delete-emptydir-data --force --timeout=60s >/dev/null 2>&1 || true
  k delete node "$1" --timeout=30s >/dev/null 2>&1 || true
  onw "${T[*]}" /var/lib/kforge/bin/kforge reset --force --plain >/dev/null || fail "reset on $W"
}
wnode=$(onw hostname)
unjoin "$wnode"
mapfile -t jphases < <(phases_of "${JOIN[@]}" | awk '{print $2}')
[ "${#jphases[@]}" -gt 4 ] || fail "too few phases in join's events: ${jphases[*]}"
k wait --for=condition=Ready "node/$wnode" --timeout=120s >/dev/null || fail "the worker's join"
mapfile -t jpoints < <(kill_points 3 "${jphases[@]}")
start=$SECONDS; ok=0; n=0
for pt in "${jpoints[@]}"; do
  IFS=: read -r ev phase delay <<<"$pt"
  sampled "$phase" || continue
  n=$((n + 1)); t0=$SECONDS
  unjoin "$wnode"
  KILLAT_ALSO="onw 'pkill -KILL -f \"kforge join\"'" killat "$ev" "$phase" "" "$delay" -- "${JOIN[@]}" || fail "join ended before the kill at $ev $phase"
  "${T[@]}" "${JOIN[@]}" >"$STATE/resume.log" 2>&1 || { tail -30 "$STATE/resume.log"; fail "join after a kill at $ev $phase"; }
  k wait --for=condition=Ready "node/$wnode" --timeout=120s >/dev/null || fail "join after a kill at $ev $phase: node not Ready"
  ok=$((ok + 1))
  echo "join killed at $ev $phase +${delay}s: resumed in $((SECONDS - t0))s"
done
JOIN_RESULT="resume: join $ok/$n in $((SECONDS - start))s"

"${RESET[@]}" >/dev/null 2>&1 || true
printf '\n%s\n%s\n' "$INIT_RESULT" "$JOIN_RESULT"
