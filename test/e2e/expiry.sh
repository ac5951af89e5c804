#!/usr/bin/env bash
# kforge's certificate expiry end-to-end test (make e2e-expiry): on this
# machine, a cluster whose certificates last two minutes (certs.validity)
# with certs.autoRenew:
#   1. the auto-renew job is installed, and the command it runs renews what
#      is near expiry, records an Event on the node, and the cluster works;
#   2. once the clock is past every certificate's expiry the cluster stops
#      answering, and `kforge certs renew all` brings it back;
#   3. reset removes the job.
# It changes this machine: it needs root and resets any cluster kforge made
# here, first and last. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE=${BUNDLE:?set BUNDLE to the path make artifacts prints}
DIR=$(mktemp -d)
ADMIN=/etc/kubernetes/admin.conf
VALIDITY=2m

log() { printf '\n=== %s\n' "$*"; }
fail() { printf 'e2e-expiry FAILED: %s\n' "$*" >&2; diagnose; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
k() { "$KUBECTL" --kubeconfig "$ADMIN" --request-timeout=10s "$@"; }
serial() { openssl x509 -noout -serial -in /etc/kubernetes/pki/apiserver.crt; }

diagnose() {
  set +e
  echo "--- nodes and pods"; k get nodes -o wide; k get pods -A -o wide
  echo "--- supervisor"; /var/lib/kforge/bin/kforge supervise status --state-dir /var/lib/kforge/supervisor
  echo "--- kubelet log"; tail -20 /var/log/kforge/kubelet.log
}

cleanup() {
  local rc=$?
  [ "${KEEP:-}" = 1 ] || "$KFORGE" reset --force >/dev/null 2>&1 || true
  rm -rf "$DIR"
  exit $rc
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root"
exec 8>/run/kforge-node.lock
flock -w 1800 8 || fail "another kforge e2e or bench holds /run/kforge-node.lock"
"$KFORGE" reset --force >/dev/null

cat >"$DIR/cluster.yaml" <<YAML
apiVersion: kforge.dev/v1alpha1
kind: Cluster
hosts:
  - role: control-plane
    local: true
certs:
  validity: $VALIDITY
  autoRenew: true
YAML

log "kforge init -f with certs.validity $VALIDITY and certs.autoRenew"
out=$("$KFORGE" init -f "$DIR/cluster.yaml" --bundle "$BUNDLE" --plain 2>&1) || { echo "$out"; fail "init"; }
grep -E '^\[ok\] certs-auto-renew' <<<"$out" || fail "init did not run certs-auto-renew"
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "node not Ready"
job=/var/lib/kforge/supervisor/services/kforge-certs-renew.yaml
[ -f "$job" ] || fail "no auto-renew job at $job"
grep -q 'every: 24h0m0s' "$job" || fail "the job does not run daily: $(cat "$job")"
[ "$(/var/lib/kforge/bin/kforge supervise status --state-dir /var/lib/kforge/supervisor | jq -r '.services["kforge-certs-renew"].state')" = scheduled ] ||
  fail "the supervisor does not show the job scheduled"
left=$(( $(date -d "$(openssl x509 -noout -enddate -in /etc/kubernetes/pki/apiserver.crt | cut -d= -f2)" +%s) - $(date +%s) ))
[ "$left" -le 120 ] || fail "the API server's certificate lasts ${left}s more, want $VALIDITY at most"
echo "job installed; the API server's certificate expires in ${left}s"

log "the job's command renews what expires within 30 days and records an Event"
# The job's own argv, from its service file.
mapfile -t argv < <(sed -n '/^argv:/,/^[a-z]/p' "$job" | sed -n 's/^ *- //p')
[ "${argv[1]} ${argv[2]}" = "certs renew" ] || fail "the job runs ${argv[*]}"
before=$(serial)
start=$(now)
out=$("${argv[@]}" 2>&1) || { echo "$out"; fail "the job's command: ${argv[*]}"; }
echo "$out" | tail -6
echo "job's command: $(since "$start")s"
[ "$(serial)" != "$before" ] || fail "the job's command did not renew the API server's certificate"
k get events -n default --field-selector reason=CertificatesRenewed -o jsonpath='{.items[*].message}' | grep -q 'kforge renewed .*apiserver' ||
  fail "no CertificatesRenewed Event on the node"
k get nodes >/dev/null || fail "the cluster does not answer after the job"
echo "Event: $(k get events -n default --field-selector reason=CertificatesRenewed -o jsonpath='{.items[0].message}')"

log "the clock past every certificate's expiry: the cluster stops answering"
end=$(date -d "$(openssl x509 -noout -enddate -in /etc/kubernetes/pki/apiserver.crt | cut -d= -f2)" +%s)
sleep $(( end - $(date +%s) + 5 ))
if k get nodes >/dev/null 2>&1; then fail "the cluster still answers with expired certificates"; fi
err=$(k get nodes 2>&1 || true)
echo "kubectl: $(tail -1 <<<"$err")"
grep -qi 'expired\|x509\|certificate' <<<"$err" || fail "kubectl failed, but not on a certificate: $err"

out=$("$KFORGE" doctor 2>&1) && fail "doctor found nothing with expired certificates"
grep -q '\[certificates\] localhost: apiserver (/etc/kubernetes/pki/apiserver.crt) has expired' <<<"$out" || { echo "$out"; fail "doctor did not name the expired API server certificate"; }
echo "doctor: $(grep -c '^\[certificates\]' <<<"$out") certificates named, e.g. $(grep -m1 'apiserver (' <<<"$out")"

log "kforge certs renew all brings it back"
start=$(now)
out=$("$KFORGE" certs renew all --plain 2>&1) || { echo "$out"; fail "certs renew all after expiry"; }
echo "$out" | tail -6
RENEW_SECONDS=$(since "$start")
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "node not Ready after the renewal"
k -n kube-system wait --for=condition=Ready pod -l tier=control-plane --timeout=120s >/dev/null || fail "control plane not Ready after the renewal"
k -n kube-system rollout status deploy/coredns --timeout=120s >/dev/null || fail "CoreDNS not available after the renewal"
left=$(( $(date -d "$(openssl x509 -noout -enddate -in /etc/kubernetes/pki/apiserver.crt | cut -d= -f2)" +%s) - $(date +%s) ))
echo "renewed after expiry in ${RENEW_SECONDS}s; the cluster answers; the API server's certificate lasts ${left}s (certs renew without -f uses the default validity)"

log "kforge reset removes the job"
"$KFORGE" reset --force >/dev/null || fail "reset"
[ -e "$job" ] && fail "reset left $job"
printf '\ne2e-expiry passed: renewal after expiry %ss\n' "$RENEW_SECONDS"
