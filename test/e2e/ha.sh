#!/usr/bin/env bash
# kforge's highly available control plane end to end (make e2e-ha): four
# machine containers from `make machines` (1-3 control planes booting
# systemd, 4 a worker) and a cluster file with loadBalancer.virtualIP.
# A first `kforge init -f` whose third control plane fails after its etcd
# member was added rolls that one back (member removed, host clean); the
# next builds the first control plane, joins the other two (etcd
# learners, promoted) and the worker; this host's kubectl reaches the
# cluster through the virtual IP. Then the etcd leader's machine is
# stopped: kubectl through the virtual IP keeps answering from this host
# and from a pod on the worker, a new Deployment rolls out, and etcd
# reports 2 of 3 members healthy. The machine is started again and its
# member rejoins by itself. A removal that would lose quorum is refused. A
# control plane is removed with `reset --ssh` (2 members) and joined again
# by a re-run of init -f (3 members); then its machine is stopped and it is
# taken out from another one (etcd members remove), and its replacement
# joins with `kforge join --control-plane --ssh` from machine 1. `reset -f`
# leaves every machine clean. An etcd snapshot, a change and a restore on
# all three control planes bring the old state back first, and `certs
# renew all -f` renews on each control plane in turn while a pod on the
# worker keeps asking the API server through the virtual IP. Every wait and
# every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE=${BUNDLE:?set BUNDLE to the path make artifacts prints}
CLUSTER=${CLUSTER:?set CLUSTER to the cluster file make machines prints (CONTROL_PLANES=3)}
STATE=$(dirname "$CLUSTER")
export KUBECONFIG=$STATE/admin.conf
NS=kforge-e2e
SSH=(ssh -F "$STATE/ssh_config" -o BatchMode=yes -o ConnectTimeout=5)
NET=$(awk '/address:/ {print $NF; exit}' "$CLUSTER" | awk -F. '{print $1"."$2"."$3}')
VIP=$NET.100
HA=$STATE/ha.yaml
KEY=$(awk '/IdentityFile/ {print $2; exit}' "$STATE/ssh_config")
SSHFLAGS=(--ssh-key "$KEY" --known-hosts "$STATE/known_hosts" --admin-kubeconfig "$KUBECONFIG")

log() { printf '\n=== %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
k() { "$KUBECTL" --request-timeout=10s "$@"; }
fail() {
  printf 'e2e-ha FAILED: %s\n' "$*" >&2
  set +e
  # make machines-down removes $STATE: keep kforge's logs of this run.
  mkdir -p _output/e2e-ha && cp "$STATE"/ha-*.log _output/e2e-ha/ 2>/dev/null && echo "kforge's logs of this run: _output/e2e-ha/" >&2
  k get nodes -o wide; k get pods -A -o wide
  exit 1
}
on() { local m=$1; shift; "${SSH[@]}" -l root "kforge-m$m" "$@"; }
source test/e2e/ha-lib.sh

cp "$CLUSTER" "$HA"
cat >>"$HA" <<YAML
loadBalancer:
  virtualIP: $VIP
YAML
grep -c 'role: control-plane' "$HA" | grep -qx 3 || fail "the cluster file $HA does not have 3 control planes (make machines CONTROL_PLANES=3)"

log "a control plane whose join fails after its etcd member was added is rolled back"
# /var/lib/etcd as a file on machine 3: its etcd-join adds the learner,
# then cannot make the data directory.
on 3 'touch /var/lib/etcd'
"$KFORGE" init -f "$HA" --bundle "$BUNDLE" >"$STATE/ha-init0.log" 2>&1 && fail "init -f with machine 3's /var/lib/etcd a file succeeded"
{ grep -A3 '^Control planes:' "$STATE/ha-init0.log" | grep '172.30.0.13 .*FAILED' && grep "rolled back: the host's etcd member was removed and the host reset" "$STATE/ha-init0.log"; } ||
  { tail -30 "$STATE/ha-init0.log"; fail "the summary does not say machine 3 failed and was rolled back"; }
[ "$(members_json | jq -r '[.members[].name] | sort | join(",")')" = "kforge-m1,kforge-m2" ] ||
  { members; fail "etcd does not list exactly kforge-m1 and kforge-m2 after the rollback"; }
on 3 'test ! -e /var/lib/etcd && test ! -e /etc/kubernetes/pki && test ! -e /etc/kubernetes/manifests/etcd.yaml && test ! -e /var/lib/kforge/run.json' ||
  fail "machine 3 is not clean after the rollback"
echo "rolled back: machine 3's member removed, the host clean; members:"
members

log "kforge init -f: 3 control planes (virtual IP $VIP) and a worker"
start=$(now)
"$KFORGE" init -f "$HA" --bundle "$BUNDLE" --kubeconfig-out "$KUBECONFIG" >"$STATE/ha-init.log" 2>&1 ||
  { tail -60 "$STATE/ha-init.log"; fail "init -f failed"; }
INIT_SECONDS=$(since "$start")
grep -v '^\[172\.30\.0\.[0-9]*\] [IEW][0-9]' "$STATE/ha-init.log" | sed -n '/^Joining 2 more control plane/,$p' | head -40
grep -A4 '^etcd members:' "$STATE/ha-init.log" | grep -c ' leader \| follower ' | grep -qx 3 ||
  fail "init's summary does not show 3 voting etcd members"
[ "$(grep -c '/readyz: ok' "$STATE/ha-init.log")" = 3 ] || fail "init's summary does not show 3 ready API servers"
grep -q "server: https://$VIP:6443" "$KUBECONFIG" || fail "admin.conf does not point at the virtual IP"
k wait --for=condition=Ready node --all --timeout=180s >/dev/null || fail "nodes not Ready"
[ "$(k get nodes -o name | wc -l)" = 4 ] || fail "want 4 nodes"
[ "$(k get nodes -l node-role.kubernetes.io/control-plane -o name | wc -l)" = 3 ] || fail "want 3 control-plane nodes"
for m in 1 2 3 4; do
  on "$m" "grep -q 'server: https://127.0.0.1:6444' /etc/kubernetes/kubelet.conf" || fail "the kubelet of machine $m does not use its node-local load balancer"
done
k get nodes -o wide
echo "after init (${INIT_SECONDS}s):"
members

k create namespace "$NS" >/dev/null
prober_account

log "certs renew all -f: every control plane in turn, the API answering through the virtual IP"
serials() { local m; for m in 1 2 3; do openssl s_client -connect "172.30.0.1$m:6443" </dev/null 2>/dev/null | openssl x509 -noout -serial; done; }
before=$(serials)
[ "$(grep -c serial= <<<"$before")" = 3 ] || fail "could not read the 3 API servers' certificates: $before"
# 1500 requests 100 ms apart (at least 150 s), each bounded to 2 s.
start_prober prober-renew kforge-m4 "https://$VIP:6443/api/v1/namespaces/$NS/configmaps?limit=1" 1500 || fail "the renewal prober did not start on the worker"
start=$(now)
"$KFORGE" certs renew all -f "$HA" --plain >"$STATE/ha-renew.log" 2>&1 || { tail -30 "$STATE/ha-renew.log"; fail "certs renew all -f"; }
RENEW_SECONDS=$(since "$start")
for m in 1 2 3; do
  grep -q "\[ok\] restart kube-apiserver on 172.30.0.1$m " "$STATE/ha-renew.log" || { cat "$STATE/ha-renew.log"; fail "certs renew -f did not restart the API server of kforge-m$m"; }
done
after=$(serials)
for m in 1 2 3; do
  [ "$(sed -n "${m}p" <<<"$before")" != "$(sed -n "${m}p" <<<"$after")" ] || fail "the API server of kforge-m$m serves the same certificate after certs renew -f"
done
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "nodes not Ready after certs renew -f"
wait_healthy 3 60 || { members; fail "etcd is not 3 healthy members after certs renew -f"; }
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/prober-renew --timeout=240s >/dev/null || fail "the renewal prober did not finish"
PROBE_RENEW=$(k -n "$NS" logs prober-renew)
echo "renewed on 3 control planes in ${RENEW_SECONDS}s; API server serials before/after: $(tr '\n' ' ' <<<"$before")/ $(tr '\n' ' ' <<<"$after")"
echo "prober on kforge-m4 during the renewal (1500 requests through $VIP): $PROBE_RENEW"
okr=$(sed -n 's/^probe: \([0-9]*\) ok.*/\1/p' <<<"$PROBE_RENEW")
[ "${okr:-0}" -ge 1400 ] || fail "the pod on the worker got only ${okr:-0} of 1500 answers while the control planes renewed one at a time"

log "etcd snapshot, a change, and a restore on all three control planes"
k -n "$NS" create configmap before-snapshot --from-literal=k=v >/dev/null
"$KFORGE" etcd snapshot save "$STATE/ha-snapshot.db" -f "$HA" >"$STATE/ha-snapshot.log" 2>&1 || { cat "$STATE/ha-snapshot.log"; fail "snapshot save"; }
k -n "$NS" delete configmap before-snapshot >/dev/null
k -n "$NS" create configmap after-snapshot --from-literal=k=v >/dev/null
start=$(now)
"$KFORGE" etcd snapshot restore "$STATE/ha-snapshot.db" -f "$HA" >"$STATE/ha-restore.log" 2>&1 || { tail -30 "$STATE/ha-restore.log"; fail "snapshot restore"; }
grep -c 'etcdutl snapshot restore on' "$STATE/ha-restore.log" | grep -qx 3 || fail "the restore did not run on the 3 control planes"
k -n "$NS" get configmap before-snapshot >/dev/null || fail "the ConfigMap from before the snapshot is not back"
k -n "$NS" get configmap after-snapshot >/dev/null 2>&1 && fail "the ConfigMap created after the snapshot survived the restore"
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "nodes not Ready after the restore"
wait_healthy 3 120 || { members; fail "etcd is not 3 healthy members after the restore"; }
echo "restored in $(since "$start")s: before-snapshot back, after-snapshot gone, every node Ready; members (new IDs):"
members

log "a workload with a Service, and a prober on the worker asking the API server through the virtual IP"
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: echo
        image: kforge.dev/echo:v1
        imagePullPolicy: Never
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
YAML
k -n "$NS" rollout status deployment/web --timeout=180s >/dev/null || fail "web did not roll out"
k -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null || fail "CoreDNS is not ready"
pod=$(k -n "$NS" get pods -l app=web -o jsonpath='{.items[0].metadata.name}')
got=$(k -n "$NS" exec "$pod" -- /echo get "http://web.$NS.svc.cluster.local/") || fail "the Service web does not answer by name from $pod"
echo "web.$NS.svc.cluster.local answered from $pod: $got"
# 900 requests 100 ms apart (at least 90 s), each bounded to 2 s.
start_prober prober kforge-m4 "https://$VIP:6443/api/v1/namespaces/$NS/configmaps?limit=1" 900 || fail "the prober did not start on the worker"
sleep 3

LEADER=$(etcd_leader)
[[ "$LEADER" =~ ^kforge-m[123]$ ]] || fail "no etcd leader among the control planes: '$LEADER'"
log "stop the etcd leader's machine, $LEADER"
STOPPED_AT=$(now)
docker stop -t 1 "$LEADER" >/dev/null
# This host's kubectl through the virtual IP: one request every 0.5 s for
# 30 s, each bounded to 3 s.
ok=0 bad=0 first_ok=""
for i in $(seq 1 60); do
  t=$(now)
  if "$KUBECTL" --request-timeout=3s get --raw "/api/v1/namespaces/$NS/configmaps?limit=1" >/dev/null 2>&1; then
    ok=$((ok + 1))
    [ -n "$first_ok" ] || first_ok=$(since "$STOPPED_AT")
  else
    bad=$((bad + 1))
  fi
  sleep "$(awk -v a="$t" -v b="$(now)" 'BEGIN{d=0.5-(b-a); print (d>0)?d:0}')"
done
echo "kubectl from this host through $VIP after the stop: $ok answered, $bad failed; first answer ${first_ok:-never}s after the stop"
[ "$ok" -ge 30 ] || fail "kubectl through the virtual IP answered only $ok of 60 requests after $LEADER stopped"
k -n "$NS" create deployment web2 --image=kforge.dev/echo:v1 --replicas=2 >/dev/null || fail "create deployment web2"
k -n "$NS" patch deployment web2 --type=json -p '[{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"}]' >/dev/null
k -n "$NS" rollout status deployment/web2 --timeout=180s >/dev/null || fail "a new Deployment did not roll out with $LEADER stopped"
echo "deployment web2 rolled out with $LEADER stopped"
wait_healthy 2 90 || { members; fail "etcd does not report 2 healthy members with $LEADER stopped"; }
echo "with $LEADER stopped (a quorum of 2):"
members
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/prober --timeout=150s >/dev/null || fail "the prober did not finish"
PROBE=$(k -n "$NS" logs prober)
echo "prober on kforge-m4 (900 requests, 100 ms apart, through $VIP): $PROBE"
okp=$(sed -n 's/^probe: \([0-9]*\) ok.*/\1/p' <<<"$PROBE")
[ "${okp:-0}" -ge 450 ] || fail "the pod on the worker got only ${okp:-0} of 900 answers"

log "start $LEADER again: it rejoins by itself"
docker start "$LEADER" >/dev/null
wait_healthy 3 240 || { members; fail "$LEADER's etcd member did not come back"; }
k wait --for=condition=Ready node "$LEADER" --timeout=180s >/dev/null || fail "$LEADER is not Ready again"
echo "after $LEADER came back:"
members

log "a removal that would lose quorum is refused"
OTHER=kforge-m2
[ "$LEADER" != kforge-m2 ] || OTHER=kforge-m3
DOWN=kforge-m1
[ "$OTHER" != kforge-m1 ] || DOWN=kforge-m3
[ "$DOWN" != "$OTHER" ] || DOWN=kforge-m2
docker stop -t 1 "$DOWN" >/dev/null
wait_healthy 2 60 || fail "etcd does not report 2 healthy members with $DOWN stopped"
ip=$(awk -v n="$OTHER" '/address:/ {a=$NF} /name:/ && $NF==n {print a}' "$HA")
out=$(echo y | "$KFORGE" reset --ssh "root@$ip" "${SSHFLAGS[@]}" 2>&1) && fail "reset of $OTHER with $DOWN stopped succeeded"
grep -q 'short of the 2 a quorum needs' <<<"$out" || fail "the refusal does not explain quorum: $out"
on "${OTHER#kforge-m}" test -e /etc/kubernetes/manifests/etcd.yaml || fail "the refused reset changed $OTHER"
echo "refused: $(grep -o 'after it leaves.*' <<<"$out" | head -1)"
docker start "$DOWN" >/dev/null
wait_healthy 3 240 || fail "$DOWN's etcd member did not come back"

log "remove control plane kforge-m3 with reset --ssh"
ip3=$(awk '/address:/ {a=$NF} /name: kforge-m3$/ {print a}' "$HA")
"$KFORGE" reset --ssh "root@$ip3" "${SSHFLAGS[@]}" --force >"$STATE/ha-reset3.log" 2>&1 ||
  { tail -30 "$STATE/ha-reset3.log"; fail "reset --ssh of kforge-m3 failed"; }
grep 'left the cluster' "$STATE/ha-reset3.log" || { tail -30 "$STATE/ha-reset3.log"; fail "reset --ssh did not say the member left"; }
[ "$(members_json | jq '.members | length')" = 2 ] || fail "etcd still lists $(members_json | jq '.members | length') members"
echo "after reset --ssh of kforge-m3:"
members
k get node kforge-m3 >/dev/null 2>&1 && fail "node kforge-m3 is still in the cluster"

log "join it again in its place with a re-run of init -f"
start=$(now)
"$KFORGE" init -f "$HA" --bundle "$BUNDLE" >"$STATE/ha-init2.log" 2>&1 ||
  { tail -60 "$STATE/ha-init2.log"; fail "the second init -f failed"; }
grep -E '^  control plane .*kforge-m3|already a control plane' "$STATE/ha-init2.log" || true
wait_healthy 3 120 || fail "etcd does not list 3 healthy members after the rejoin"
echo "after kforge-m3 joined again ($(since "$start")s for the whole re-run):"
members
k wait --for=condition=Ready node --all --timeout=180s >/dev/null || fail "nodes not Ready after the rejoin"

log "a control plane whose machine died is taken out from another one, and its replacement joins"
docker stop -t 1 kforge-m3 >/dev/null
"$KFORGE" etcd members remove kforge-m3 -f "$HA" >"$STATE/ha-remove3.log" 2>&1 || { cat "$STATE/ha-remove3.log"; fail "etcd members remove kforge-m3 failed"; }
cat "$STATE/ha-remove3.log"
[ "$(members_json | jq '.members | length')" = 2 ] || fail "etcd lists $(members_json | jq '.members | length') members after removing kforge-m3"
k get node kforge-m3 >/dev/null 2>&1 && fail "node kforge-m3 is still in the cluster"
echo "after etcd members remove kforge-m3 (machine stopped):"
members
# The machine comes back as its replacement would: reset, then joined.
docker start kforge-m3 >/dev/null
for i in $(seq 1 30); do on 3 true 2>/dev/null && break; sleep 2; done
"$KFORGE" reset --ssh "root@$ip3" "${SSHFLAGS[@]}" --force >"$STATE/ha-reset3b.log" 2>&1 ||
  { tail -30 "$STATE/ha-reset3b.log"; fail "reset --ssh of the removed kforge-m3 failed"; }
# From machine 1, as an operator on a control plane would: kforge join
# --control-plane --ssh, the secrets copied over its own SSH connection.
for f in "$KFORGE:/root/kforge" "$KEY:/root/machine-key" "$STATE/known_hosts:/root/machine-known-hosts" \
  "$BUNDLE:/root/bundle.tar.zst" "$BUNDLE.sig:/root/bundle.tar.zst.sig" "${KFORGE_TRUSTED_KEYS:?}:/root/bundle.pub"; do
  scp -F "$STATE/ssh_config" -q "${f%%:*}" "root@kforge-m1:${f#*:}" || fail "copy ${f%%:*} to machine 1"
done
start=$(now)
on 1 "/root/kforge join --plain --control-plane --ssh root@$ip3 --ssh-key /root/machine-key --known-hosts /root/machine-known-hosts --bundle /root/bundle.tar.zst --trusted-key /root/bundle.pub" \
  >"$STATE/ha-join3.log" 2>&1 || { tail -40 "$STATE/ha-join3.log"; fail "kforge join --control-plane --ssh of kforge-m3 failed"; }
grep -E '^control plane |/readyz' "$STATE/ha-join3.log"
echo "kforge join --control-plane --ssh took $(since "$start")s"
wait_healthy 3 120 || fail "etcd does not list 3 healthy members after the replacement joined"
echo "after the replacement joined:"
members

log "kforge reset -f leaves every machine clean"
"$KFORGE" reset -f "$HA" --force >"$STATE/ha-reset.log" 2>&1 || { tail -30 "$STATE/ha-reset.log"; fail "reset -f failed"; }
for m in 1 2 3 4; do
  on "$m" 'test ! -e /etc/kubernetes/pki && test ! -e /var/lib/etcd && test ! -e /etc/kubernetes/manifests/kforge-apiserver-lb.yaml && ! ip -4 addr show | grep -q "'"$VIP"'/"' ||
    fail "machine $m is not clean after reset -f"
done
echo "e2e-ha passed: init -f ${INIT_SECONDS}s; $LEADER stopped: kubectl from this host $ok/60, pod on the worker: $PROBE"
