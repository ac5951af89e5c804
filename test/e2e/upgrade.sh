#!/usr/bin/env bash
# kforge's upgrade end to end (make e2e-upgrade): three machine containers
# from `make machines` (1 a control plane, 2 and 3 workers) built by
# `kforge init -f` at the older bundle's version; a 2-replica Deployment
# behind a Service with a PodDisruptionBudget of minAvailable 1, and a
# client pod on the control plane asking the Service every 200 ms. First
# an upgrade that breaks the API server (a flag it does not know, through
# the cluster file's apiServer.extraArgs) is rolled back: the control
# plane runs the old version again and the cluster answers. Then `upgrade
# plan` shows the path, `upgrade apply` moves every node to the newer
# bundle's version (an etcd snapshot first), and the client's failed
# requests are counted. A downgrade is refused, `upgrade rollback` takes
# the cluster back to the old version, and `reset -f` leaves every machine
# clean. Every wait and every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE_OLD=${BUNDLE_OLD:?set BUNDLE_OLD to the bundle of the older version}
BUNDLE_NEW=${BUNDLE_NEW:?set BUNDLE_NEW to the bundle of the next minor}
CLUSTER=${CLUSTER:?set CLUSTER to the cluster file make machines prints (N=3)}
STATE=$(dirname "$CLUSTER")
export KUBECONFIG=$STATE/admin.conf
NS=kforge-e2e
SSH=(ssh -F "$STATE/ssh_config" -o BatchMode=yes -o ConnectTimeout=5)
OLD=$("$KFORGE" bundle inspect --json "$BUNDLE_OLD" | jq -r .kubernetesVersion)
NEW=$("$KFORGE" bundle inspect --json "$BUNDLE_NEW" | jq -r .kubernetesVersion)
FILE=$STATE/upgrade.yaml
BROKEN=$STATE/upgrade-broken.yaml

log() { printf '\n=== %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
k() { "$KUBECTL" --request-timeout=20s "$@"; }
fail() {
  printf 'e2e-upgrade FAILED: %s\n' "$*" >&2
  set +e
  mkdir -p _output/e2e-upgrade && cp "$STATE"/upgrade-*.log _output/e2e-upgrade/ 2>/dev/null && echo "kforge's logs of this run: _output/e2e-upgrade/" >&2
  k get nodes -o wide; k get pods -A -o wide
  exit 1
}
on() { local m=$1; shift; "${SSH[@]}" -l root "kforge-m$m" "$@"; }
# versions prints each node's name and kubelet version, sorted.
versions() { k get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion}{"\n"}{end}' | sort; }
all_at() { [ "$(versions | grep -vc "=$1\$")" = 0 ] && [ "$(versions | wc -l)" = 3 ]; }
apiserver_image() { k -n kube-system get pod -l component=kube-apiserver -o jsonpath='{.items[0].spec.containers[0].image}'; }
answers() { local pod; pod=$(k -n "$NS" get pods -l app=web -o jsonpath='{.items[0].metadata.name}') && k -n "$NS" exec "$pod" -- /echo get "http://$SVC/" >/dev/null; }

[ "$OLD" != "$NEW" ] || fail "BUNDLE_OLD and BUNDLE_NEW both hold $OLD"
{ cat "$CLUSTER"; echo "kubernetesVersion: $OLD"; } >"$FILE"
{ cat "$FILE"; printf 'apiServer:\n  extraArgs:\n    kforge-e2e-no-such-flag: "1"\n'; } >"$BROKEN"

log "kforge init -f at $OLD: a control plane and two workers"
start=$(now)
"$KFORGE" init -f "$FILE" --bundle "$BUNDLE_OLD" --kubeconfig-out "$KUBECONFIG" --plain >"$STATE/upgrade-init.log" 2>&1 ||
  { tail -40 "$STATE/upgrade-init.log"; fail "init -f at $OLD"; }
k wait --for=condition=Ready node --all --timeout=180s >/dev/null || fail "nodes not Ready"
all_at "$OLD" || fail "not every node runs $OLD: $(versions)"
echo "built at $OLD in $(since "$start")s:"
versions

log "a Deployment of 2 behind a Service with a PodDisruptionBudget, and a client on the control plane"
k create namespace "$NS" >/dev/null
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
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: web}}}
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
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
YAML
k -n "$NS" rollout status deployment/web --timeout=180s >/dev/null || fail "web did not roll out"
SVC=$(k -n "$NS" get service web -o jsonpath='{.spec.clusterIP}')
answers || fail "the Service web ($SVC) does not answer"
CP=$(k get nodes -l node-role.kubernetes.io/control-plane -o jsonpath='{.items[0].metadata.name}')
# start_client NAME COUNT: COUNT requests 200 ms apart to the Service,
# each bounded to 2 s, from a pod on the control plane (the workers are
# drained under it).
start_client() {
  k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  nodeName: $CP
  tolerations: [{operator: Exists}]
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: probe
    image: kforge.dev/echo:v1
    imagePullPolicy: Never
    command: [/echo, probe, "http://$SVC/", "$2", "200ms"]
YAML
  k -n "$NS" wait --for=condition=Ready "pod/$1" --timeout=60s >/dev/null
}

log "an upgrade whose API server does not start is rolled back"
out=$("$KFORGE" upgrade apply -f "$BROKEN" --bundle "$BUNDLE_NEW" --timeout 75s --snapshot-dir "$STATE" --plain 2>&1) && { echo "$out"; fail "the broken upgrade succeeded"; }
echo "$out" >"$STATE/upgrade-broken.log"
grep -E '^error:|unknown flag|not healthy within|rolled back' "$STATE/upgrade-broken.log" | grep -v '^\[' | cut -c1-300 | head -8 || true
grep -q "rolled back: $CP runs $OLD again and is healthy" "$STATE/upgrade-broken.log" || { tail -30 "$STATE/upgrade-broken.log"; fail "the broken upgrade was not rolled back"; }
grep -q "kforge-e2e-no-such-flag" "$STATE/upgrade-broken.log" || fail "the rollback's error does not show the API server's log"
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "nodes not Ready after the rollback"
all_at "$OLD" || fail "not every node runs $OLD after the rollback: $(versions)"
case "$(apiserver_image)" in *":$OLD") ;; *) fail "the API server runs $(apiserver_image) after the rollback" ;; esac
answers || fail "the Service does not answer after the rollback"
echo "rolled back: every node at $OLD, the API server $(apiserver_image), the Service answers"

log "kforge upgrade plan shows the path to $NEW"
"$KFORGE" upgrade plan -f "$FILE" --bundle "$BUNDLE_NEW" >"$STATE/upgrade-plan.log" 2>&1 || { cat "$STATE/upgrade-plan.log"; fail "upgrade plan"; }
cat "$STATE/upgrade-plan.log"
grep -q "Upgrade $OLD → $NEW" "$STATE/upgrade-plan.log" || fail "the plan does not show $OLD → $NEW"
grep -q "control-plane $CP: kubelet $OLD → $NEW" "$STATE/upgrade-plan.log" || fail "the plan does not list the control plane first"

log "kforge upgrade apply to $NEW, a client asking the Service every 200 ms"
# 1500 requests (at least 300 s).
start_client client 1500 || fail "the client did not start"
start=$(now)
"$KFORGE" upgrade apply -f "$FILE" --bundle "$BUNDLE_NEW" --snapshot-dir "$STATE" --plain >"$STATE/upgrade-apply.log" 2>&1 ||
  { tail -40 "$STATE/upgrade-apply.log"; fail "upgrade apply"; }
APPLY_SECONDS=$(since "$start")
grep -E '^etcd snapshot before|^time per node|^\[ok\] upgrade|^  [0-9.]+ .*upgraded' "$STATE/upgrade-apply.log" || true
snap=$(sed -n 's/^etcd snapshot before the upgrade: \([^ ]*\) .*/\1/p' "$STATE/upgrade-apply.log")
[ -s "$snap" ] || fail "upgrade apply did not keep its etcd snapshot on this machine ($snap)"
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "nodes not Ready after the upgrade"
all_at "$NEW" || fail "not every node runs $NEW: $(versions)"
k get nodes
[ -z "$(k get nodes -o jsonpath='{.items[*].spec.unschedulable}')" ] || fail "a node is still cordoned after the upgrade"
for a in "daemonset/kube-proxy" "deployment/coredns"; do
  case "$(k -n kube-system get "$a" -o jsonpath='{.spec.template.spec.containers[0].image}')" in
  *":$NEW" | *coredns*) ;; *) fail "$a was not upgraded" ;;
  esac
done
answers || fail "the Service does not answer after the upgrade"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/client --timeout=400s >/dev/null || fail "the client did not finish"
CLIENT=$(k -n "$NS" logs client)
echo "upgraded $OLD → $NEW in ${APPLY_SECONDS}s; the client (1500 requests, 200 ms apart, to the Service): $CLIENT"
"$KFORGE" upgrade apply -f "$FILE" --bundle "$BUNDLE_NEW" --snapshot-dir "$STATE" --plain 2>&1 | grep -q "runs $NEW already: nothing to do" ||
  fail "a second apply did not find the cluster at $NEW"

log "a downgrade is refused"
out=$("$KFORGE" upgrade plan -f "$FILE" --bundle "$BUNDLE_OLD" 2>&1) && fail "a plan to $OLD succeeded"
grep -q "kforge does not downgrade" <<<"$out" || fail "the downgrade's refusal does not say why: $out"
echo "refused: $(grep -m1 -o 'v[0-9.]* is older.*downgrade' <<<"$out")"

log "kforge upgrade rollback takes the cluster back to $OLD"
start=$(now)
"$KFORGE" upgrade rollback -f "$FILE" --plain >"$STATE/upgrade-rollback.log" 2>&1 || { tail -30 "$STATE/upgrade-rollback.log"; fail "upgrade rollback"; }
grep -E '^\[ok\] roll|etcd stays' "$STATE/upgrade-rollback.log" || true
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "nodes not Ready after upgrade rollback"
all_at "$OLD" || fail "not every node runs $OLD after upgrade rollback: $(versions)"
answers || fail "the Service does not answer after upgrade rollback"
echo "rolled back to $OLD in $(since "$start")s:"
versions

log "kforge reset -f leaves every machine clean"
"$KFORGE" reset -f "$FILE" --force --plain >"$STATE/upgrade-reset.log" 2>&1 || { tail -20 "$STATE/upgrade-reset.log"; fail "reset -f"; }
for m in 1 2 3; do
  on "$m" 'test ! -e /etc/kubernetes/pki && test ! -e /var/lib/etcd && test ! -e /var/lib/kforge/upgrade && test ! -e /usr/local/bin/kubelet' || fail "machine $m is not clean"
done
echo "e2e-upgrade passed: $OLD → $NEW in ${APPLY_SECONDS}s, client: $CLIENT"
