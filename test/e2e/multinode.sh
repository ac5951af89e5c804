#!/usr/bin/env bash
# kforge's multi-node end-to-end test (make e2e-multinode): four machine
# containers from `make machines`, first proved air-gapped (no route out, no
# containerd, runc or ctr: scripts/machines/airgap-check.sh), so everything
# kforge runs there comes from its bundle; the fourth stopped; `kforge init -f`
# from this host builds the control plane on machine 1 over SSH and joins
# the workers in parallel, reporting the stopped one; the machine's own
# kubectl then checks 3 Ready nodes, a pod on each, pod-to-pod traffic by
# IP across nodes and a Service by DNS name from every node. A join with a
# wrong CA hash must fail fast and leave its worker clean; a second init
# joins the fourth machine and skips the rest; `kforge reset -f` leaves
# every host clean. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE=${BUNDLE:?set BUNDLE to the path make artifacts prints}
CLUSTER=${CLUSTER:?set CLUSTER to the cluster file make machines prints}
STATE=$(dirname "$CLUSTER")
export KUBECONFIG=$STATE/admin.conf
NS=kforge-e2e
SSH=(ssh -F "$STATE/ssh_config" -o BatchMode=yes -o ConnectTimeout=5)

log() { printf '\n=== %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
k() { "$KUBECTL" --request-timeout=20s "$@"; }
fail() {
  printf 'e2e-multinode FAILED: %s\n' "$*" >&2
  set +e
  k get nodes -o wide; k get pods -A -o wide
  exit 1
}
# on N CMD runs CMD as root on machine N.
on() { local m=$1; shift; "${SSH[@]}" -l root "kforge-m$m" "$@"; }

log "the machines are air-gapped, with no container runtime"
bash scripts/machines/airgap-check.sh kforge-m1 kforge-m2 kforge-m3 kforge-m4 || {
  printf 'e2e-multinode FAILED: the machines are not air-gapped hosts without a container runtime\n' >&2
  exit 1
}

log "an unsupported version, a changed or unsigned bundle and a bundle for another architecture are refused before any host changes"
untouched() {
  local m
  for m in 1 2 3 4; do
    on "$m" 'test ! -e /var/lib/kforge && test ! -e /etc/kubernetes/pki && test ! -e /usr/local/bin/containerd' ||
      fail "$1 changed machine $m"
  done
}
out=$("$KFORGE" init -f "$CLUSTER" --bundle "$BUNDLE" --kubernetes-version v1.34.3 2>&1) && fail "init with Kubernetes v1.34.3 succeeded"
grep -q 'unsupported Kubernetes version "v1.34.3"; kforge supports v1.35.4, v1.36.3, v1.37.2' <<<"$out" || fail "v1.34.3 refused without naming the supported versions: $out"
untouched "init with Kubernetes v1.34.3"
# A bundle whose manifest says arm64: only the manifest is read before the
# refusal, so the manifest alone makes the test bundle.
arm=$(mktemp -d)
"$KFORGE" bundle inspect --json "$BUNDLE" | jq -c '.arch = "arm64"' >"$arm/manifest.json"
(cd "$arm" && sha256sum manifest.json >manifest.json.sha256 && tar -cf bundle.tar manifest.json manifest.json.sha256)
# Its sums are right, but the manifest changed under the real signature.
cp "$BUNDLE.sig" "$arm/bundle.tar.sig"
out=$("$KFORGE" init -f "$CLUSTER" --bundle "$arm/bundle.tar" 2>&1) && fail "init with a changed bundle succeeded"
grep -q "bundle $arm/bundle.tar: the signature by SHA256:.* does not match its manifest" <<<"$out" || fail "the changed bundle was refused without naming it and its signer: $out"
untouched "init with a changed bundle"
rm "$arm/bundle.tar.sig"
out=$("$KFORGE" init -f "$CLUSTER" --bundle "$arm/bundle.tar" 2>&1) && fail "init with an unsigned bundle succeeded"
grep -q "bundle $arm/bundle.tar is unsigned" <<<"$out" || fail "the unsigned bundle was refused without saying why: $out"
untouched "init with an unsigned bundle"
out=$("$KFORGE" init -f "$CLUSTER" --bundle "$arm/bundle.tar" --unsafe-allow-unsigned-bundle 2>&1) && fail "init with an arm64 bundle succeeded"
grep -q 'the bundle is for linux/arm64 and the host is linux/amd64' <<<"$out" || fail "the arm64 bundle was refused without saying why: $out"
untouched "init with an arm64 bundle"
rm -rf "$arm"
echo "refused: Kubernetes v1.34.3 (supported: v1.35.4, v1.36.3, v1.37.2), a changed bundle, an unsigned one and a linux/arm64 one; no machine changed"

# machine 4 is unreachable for the first init.
docker stop -t 1 kforge-m4 >/dev/null

# watch_cmdlines M: while init runs, scan the command lines of machine M's
# processes for anything shaped like a bootstrap token, with one grep every
# 0.25 s (at most 1200 scans), until /tmp/kforge-stop-watch appears.
watch_cmdlines() {
  docker exec "kforge-m$1" sh -c 'rm -f /tmp/kforge-stop-watch; i=0
    while [ $i -lt 1200 ] && [ ! -e /tmp/kforge-stop-watch ]; do
      grep -a -o -E "(^|[^a-z0-9])[a-z0-9]{6}[.][a-z0-9]{16}([^a-z0-9]|$)" /proc/[0-9]*/cmdline 2>/dev/null
      i=$((i+1)); sleep 0.25
    done; echo "scans=$i"' >"$STATE/cmdlines-m$1.txt" 2>&1 &
  WATCHERS+=($!)
}
WATCHERS=()

# The site's registry: go-containerregistry's (test/registry) on this host's
# address on the machines' bridge, TLS from its own CA, a password; the
# first init's cluster file makes it docker.io's mirror for every node.
REGISTRY=${REGISTRY:-bin/e2e-registry}
BRIDGE_IP=$(awk '/address:/ {print $NF; exit}' "$CLUSTER" | awk -F. '{print $1"."$2"."$3".1"}')
REG_DIR=$(mktemp -d)
export KFORGE_E2E_REGISTRY_USER=kforge-e2e
KFORGE_E2E_REGISTRY_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
export KFORGE_E2E_REGISTRY_PASSWORD
"$REGISTRY" --addr "$BRIDGE_IP:5443" --dir "$REG_DIR" >"$REG_DIR/requests.log" 2>"$REG_DIR/registry.err" &
REG_PID=$!
trap 'kill $REG_PID 2>/dev/null || true; rm -rf "$REG_DIR"' EXIT
for i in $(seq 60); do grep -q '^ready ' "$REG_DIR/requests.log" && break; kill -0 "$REG_PID" 2>/dev/null || break; sleep 0.5; done
grep -q '^ready ' "$REG_DIR/requests.log" || { cat "$REG_DIR/registry.err"; fail "the test registry did not start on $BRIDGE_IP:5443"; }

log "kforge init -f (machine 4 stopped), the token on no worker's command line"
# The first init's cluster file gives machine 2 a label and a taint; the
# second init's (the plain one) no longer does, and they must go.
awk '{print} /name: kforge-m2$/ {print "    labels: {kforge.dev/e2e: m2}"; print "    taints: [\"kforge.dev/e2e=m2:PreferNoSchedule\"]"}' "$CLUSTER" >"$STATE/labelled.yaml"
grep -q 'kforge.dev/e2e: m2' "$STATE/labelled.yaml" || fail "could not add labels to the cluster file"
cat >>"$STATE/labelled.yaml" <<YAML
registries:
  docker.io:
    mirrors: [https://$BRIDGE_IP:5443]
  $BRIDGE_IP:5443:
    ca: $REG_DIR/ca.crt
    auth: {usernameFrom: env:KFORGE_E2E_REGISTRY_USER, passwordFrom: env:KFORGE_E2E_REGISTRY_PASSWORD}
YAML
watch_cmdlines 2
watch_cmdlines 3
start=$(now)
set +e
"$KFORGE" init -f "$STATE/labelled.yaml" --bundle "$BUNDLE" --kubeconfig-out "$KUBECONFIG" >"$STATE/init1.log" 2>&1
rc=$?
set -e
INIT_SECONDS=$(since "$start")
for m in 2 3; do docker exec "kforge-m$m" touch /tmp/kforge-stop-watch; done
wait "${WATCHERS[@]}"
for m in 2 3; do
  scans=$(sed -n 's/^scans=//p' "$STATE/cmdlines-m$m.txt")
  [ "${scans:-0}" -gt 10 ] || fail "the command-line watch on machine $m ran ${scans:-no} scans"
  ! grep -v '^scans=' "$STATE/cmdlines-m$m.txt" || fail "a bootstrap token was on a command line on machine $m (above)"
done
echo "no token on any command line of machines 2 and 3 (scans: $(sed -n 's/^scans=//p' "$STATE"/cmdlines-m[23].txt | paste -sd+))"
tokens=$(k -n kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token -o name | wc -l)
[ "$tokens" = 1 ] || fail "$tokens bootstrap tokens after init -f; want 1: the run's own token must be deleted when its joins end"
grep -v '^\[172\.30\.0\.[0-9]*\] [IEW][0-9]' "$STATE/init1.log" | tail -25
[ "$rc" != 0 ] || fail "init reported success with machine 4 down"
grep -A6 '^Workers:' "$STATE/init1.log" | grep '172.30.0.14 .*FAILED' >/dev/null || fail "the summary does not report machine 4"
for m in 12 13; do
  grep -A6 '^Workers:' "$STATE/init1.log" | grep "172.30.0.$m .*joined" >/dev/null || fail "172.30.0.$m did not join"
done
JOIN2=$(grep -A6 '^Workers:' "$STATE/init1.log" | awk '/joined/ {print $NF}' | sort | tail -1)

log "the workers fetched kforge and their part of the bundle from the control plane, not from this host"
for m in 12 13; do
  grep -E "^\[172\.30\.0\.$m\] fetched [0-9.]+ MiB from https://172\.30\.0\.11:6445 " "$STATE/init1.log" ||
    fail "172.30.0.$m did not fetch from the control plane's artifact server"
done
for m in 2 3; do
  on "$m" 'test -z "$(ls /var/lib/kforge/bundles 2>/dev/null)"' || fail "machine $m received the bundle: $(on "$m" ls -la /var/lib/kforge/bundles)"
  on "$m" 'test ! -e /usr/local/bin/kubectl && test -z "$(ls /root/.cache/kforge/staging/*/bin/kubectl 2>/dev/null)"' || fail "machine $m fetched kubectl, a control plane's binary"
  on "$m" 'ctr -n k8s.io images ls -q | grep -E "kube-apiserver|etcd"' && fail "machine $m has a control plane's image"
done
! on 1 'ss -Hltn "sport = :6445"' | grep -q . || fail "the artifact server still listens on machine 1 after init -f"
echo "machines 2 and 3: no bundle file, no control-plane binary or image; the artifact server on machine 1 stopped with the run"

log "3 nodes Ready, a pod on each"
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "nodes not Ready"
[ "$(k get nodes -o name | wc -l)" = 3 ] || fail "want 3 nodes"
[ "$(k get node kforge-m2 -o jsonpath='{.metadata.labels.kforge\.dev/e2e}')" = m2 ] || fail "machine 2 lacks the cluster file's label"
k get node kforge-m2 -o jsonpath='{.spec.taints}' | grep -q '"key":"kforge.dev/e2e","value":"m2"' || fail "machine 2 lacks the cluster file's taint"
echo "machine 2 has the cluster file's label and taint"
k create namespace "$NS" >/dev/null
k -n "$NS" apply -f - >/dev/null <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{operator: Exists}]
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
k -n "$NS" rollout status daemonset/web --timeout=180s >/dev/null || fail "a web pod is not ready on every node"
mapfile -t pods < <(k -n "$NS" get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName}{"\n"}{end}')
[ "${#pods[@]}" = 3 ] || fail "want 3 web pods, got ${#pods[@]}"

log "pod to pod by IP across nodes, and the Service by name from every node"
for a in "${pods[@]}"; do
  read -r pod _ node <<<"$a"
  for b in "${pods[@]}"; do
    read -r other ip onode <<<"$b"
    [ "$other" = "$pod" ] && continue
    got=$(k -n "$NS" exec "$pod" -- /echo get "http://$ip:8080/") || fail "$pod on $node cannot reach $other ($ip) on $onode"
    [ "$got" = "$other" ] || fail "$ip answered $got, want $other"
  done
  got=$(k -n "$NS" exec "$pod" -- /echo get "http://web.$NS.svc.cluster.local/") || fail "$pod on $node cannot reach the Service by name"
  echo "$node: pods by IP ok, web.$NS.svc.cluster.local answered by $got"
done

log "a pod on a worker pulls through the site's mirror with its CA and password"
k -n "$NS" apply -f - >/dev/null <<'YAML' || fail "create the mirror pod"
apiVersion: v1
kind: Pod
metadata: {name: mirror}
spec:
  nodeName: kforge-m3
  restartPolicy: Never
  containers:
  - {name: echo, image: docker.io/kforge-e2e/echo:mirror, imagePullPolicy: Always, ports: [{containerPort: 8080}]}
YAML
k -n "$NS" wait --for=condition=Ready pod/mirror --timeout=120s >/dev/null ||
  { k -n "$NS" describe pod mirror | tail -12; cat "$REG_DIR/requests.log"; fail "the worker's pod did not get its image through the mirror"; }
grep -q '/v2/kforge-e2e/echo/manifests/mirror?ns=docker.io 200$' "$REG_DIR/requests.log" || { cat "$REG_DIR/requests.log"; fail "the mirror saw no authenticated pull"; }
[ "$(on 3 stat -c %a /etc/containerd/config.toml)" = 600 ] || fail "containerd's config on machine 3 holds credentials and is not 0600"
on 3 grep -q "https://$BRIDGE_IP:5443" /etc/containerd/certs.d/docker.io/hosts.toml || fail "machine 3 has no docker.io hosts.toml"
k -n "$NS" delete pod mirror --wait=false >/dev/null
echo "pod mirror on kforge-m3 Running from docker.io/kforge-e2e/echo:mirror through https://$BRIDGE_IP:5443"

log "every kubelet serves a certificate from the cluster CA for its own address (kubectl exec above went through it)"
on 1 cat /etc/kubernetes/pki/ca.crt >"$STATE/ca.crt"
for m in 11 12 13; do
  out=$(timeout 20 openssl s_client -connect "172.30.0.$m:10250" -CAfile "$STATE/ca.crt" -verify_ip "172.30.0.$m" -verify_return_error </dev/null 2>&1) ||
    { echo "$out" | tail -5; fail "the kubelet on 172.30.0.$m:10250 does not verify against the cluster CA"; }
  grep -q 'Verify return code: 0 (ok)' <<<"$out" || fail "172.30.0.$m:10250: $(grep 'Verify return code' <<<"$out")"
done
denied=$(k get csr -o json | jq '[.items[] | select(.spec.signerName == "kubernetes.io/kubelet-serving") | select(.status.conditions[0].type == "Denied")] | length')
[ "$denied" = 0 ] || fail "$denied kubelet-serving CSRs were denied"
echo "kubelets on 172.30.0.11-13 verified against the cluster CA on :10250"
# metrics-server scrapes every kubelet, verifying it against the cluster CA.
for i in $(seq 1 60); do
  [ "$(k top node --no-headers 2>/dev/null | wc -l)" = 3 ] && break
  sleep 2
done
[ "$(k top node --no-headers 2>/dev/null | wc -l)" = 3 ] ||
  fail "kubectl top node does not show the 3 nodes: $(k top node 2>&1 | tail -2); $(k -n kube-system logs deploy/metrics-server --tail 5 2>&1)"
k top node

log "a claim of the default StorageClass on a worker, written and read back"
img=$(k -n local-path-storage get deploy local-path-provisioner -o jsonpath='{.spec.template.spec.containers[0].image}')
k -n "$NS" apply -f - >/dev/null <<YAML || fail "create the claim and its pod"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/hostname: kforge-m3}
  containers:
  - name: writer
    image: $img
    imagePullPolicy: Never
    command: [sh, -c, 'echo kept > /data/file && cat /data/file']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
YAML
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/writer --timeout=180s >/dev/null ||
  fail "the pod writing to the claim on kforge-m3 did not succeed: $(k -n "$NS" get pvc,pod -o wide 2>&1 | tail -3)"
[ "$(k -n "$NS" logs writer)" = kept ] || fail "the pod did not read back what it wrote"
on 3 'cat /opt/local-path-provisioner/pvc-*/file' | grep -qx kept || fail "the volume is not on kforge-m3's disk"
echo "claim data Bound on kforge-m3, written and read back, on that machine's disk"

log "a join with a wrong CA hash fails fast and leaves the worker clean"
docker start kforge-m4 >/dev/null
for i in $(seq 1 50); do on 4 true 2>/dev/null && break; sleep 0.2; done
on 4 mkdir -p /var/lib/kforge/bin
scp -F "$STATE/ssh_config" -q "$KFORGE" root@kforge-m4:/var/lib/kforge/bin/kforge
endpoint_token=$(grep -m1 '^  kforge join' "$STATE/init1.log" | awk '{print $3, $5}')
read -r endpoint token <<<"$endpoint_token"
start=$(now)
if out=$(on 4 timeout 60 /var/lib/kforge/bin/kforge join "$endpoint" --token "$token" \
    --discovery-token-ca-cert-hash sha256:0000000000000000000000000000000000000000000000000000000000000000 --plain 2>&1); then
  fail "join with a wrong CA hash succeeded"
fi
WRONG_SECONDS=$(since "$start")
echo "$out" | tail -3
echo "$out" | grep -i 'hash' >/dev/null || fail "the error does not name the CA hash"
awk -v s="$WRONG_SECONDS" 'BEGIN{exit !(s < 15)}' || fail "wrong-hash join took ${WRONG_SECONDS}s"
left=$(on 4 'ls /etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf /var/lib/kubelet/config.yaml 2>/dev/null; pgrep -x kubelet' || true)
[ -z "$left" ] || fail "the failed join left: $left"

log "kforge init -f again: machine 4, which cannot reach the artifact server, joins with the bundle from this host; the others are skipped"
on 4 iptables -I OUTPUT -p tcp --dport 6445 -j REJECT
start=$(now)
"$KFORGE" init -f "$CLUSTER" --bundle "$BUNDLE" --kubeconfig-out "$KUBECONFIG" >"$STATE/init2.log" 2>&1 || { tail -30 "$STATE/init2.log"; fail "second init"; }
REINIT_SECONDS=$(since "$start")
on 4 iptables -D OUTPUT -p tcp --dport 6445 -j REJECT
grep "172.30.0.14: cannot reach the control plane's artifact server at 172.30.0.11:6445" "$STATE/init2.log" || fail "init did not say machine 4 cannot reach the artifact server"
on 4 'ls /var/lib/kforge/bundles/*.tar.zst' >/dev/null || fail "machine 4 did not get the bundle from this host"
grep -A6 '^Workers:' "$STATE/init2.log"
grep -A6 '^Workers:' "$STATE/init2.log" | grep '172.30.0.12 .*already joined' >/dev/null || fail "machine 2 was not skipped"
JOIN1=$(grep -A6 '^Workers:' "$STATE/init2.log" | awk '/172.30.0.14 .*joined/ {print $NF}')
[ -n "$JOIN1" ] || fail "machine 4 did not join"
k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "4 nodes not Ready"
[ "$(k get nodes -o name | wc -l)" = 4 ] || fail "want 4 nodes"
[ -z "$(k get node kforge-m2 -o jsonpath='{.metadata.labels.kforge\.dev/e2e}')" ] || fail "the label the file no longer lists is still on machine 2"
k get node kforge-m2 -o jsonpath='{.spec.taints}' | grep -q 'kforge.dev/e2e' && fail "the taint the file no longer lists is still on machine 2"
echo "machine 2's label and taint, no longer in the cluster file, are gone"
for m in 1 2 3; do
  on "$m" 'test ! -e /etc/containerd/certs.d/docker.io && test ! -e /var/lib/kforge/registry-auth.json && ! grep -q "password =" /etc/containerd/config.toml' ||
    fail "machine $m kept the registries the cluster file no longer lists"
done
echo "the registries, no longer in the cluster file, are gone from machines 1-3"

log "kforge certs check-expiration -f: every host's certificates over SSH"
out=$("$KFORGE" certs check-expiration -f "$CLUSTER") || { echo "$out"; fail "certs check-expiration -f"; }
for m in 11 12 13 14; do
  grep -q "^HOST 172.30.0.$m" <<<"$out" || fail "certs check-expiration -f lacks 172.30.0.$m"
done
[ "$(grep -c '^kubelet-client ' <<<"$out")" = 4 ] || fail "certs check-expiration -f: want a kubelet client certificate on each of 4 hosts: $out"
[ "$(grep -c '^kubelet-serving .* kubelet$' <<<"$out")" = 4 ] || fail "certs check-expiration -f: want a kubelet serving certificate, renewed by the kubelet, on each of 4 hosts: $out"
grep -q '^apiserver ' <<<"$out" || fail "certs check-expiration -f lacks the control plane's certificates"
echo "certs check-expiration -f: $(grep -c '^HOST' <<<"$out") hosts, $(grep -cE '^[a-z].* (kforge|kubelet|none)$' <<<"$out") certificates"

log "from the control plane: kforge reset --ssh drains and removes machine 4, kforge join --ssh adds it back"
KEY=$(awk '/IdentityFile/ {print $2; exit}' "$STATE/ssh_config")
scp -F "$STATE/ssh_config" -q "$KEY" root@kforge-m1:/root/machine-key
scp -F "$STATE/ssh_config" -q "$STATE/known_hosts" root@kforge-m1:/root/machine-known-hosts
scp -F "$STATE/ssh_config" -q "$KFORGE" root@kforge-m1:/root/kforge
# reset removed the runtime and the kubelet from machine 4: the join brings
# them from the bundle again, as in an air-gapped site.
scp -F "$STATE/ssh_config" -q "$BUNDLE" root@kforge-m1:/root/bundle.tar.zst
scp -F "$STATE/ssh_config" -q "$BUNDLE.sig" root@kforge-m1:/root/bundle.tar.zst.sig
sshflags="--ssh-key /root/machine-key --known-hosts /root/machine-known-hosts"
on 1 "/root/kforge reset --force --plain --ssh kforge@172.30.0.14 $sshflags" || fail "reset --ssh"
[ "$(k get nodes -o name | wc -l)" = 3 ] || fail "reset --ssh left machine 4's node"
start=$(now)
on 1 "/root/kforge join --plain --ssh kforge@172.30.0.14 --bundle /root/bundle.tar.zst $sshflags" || fail "join --ssh"
JOINSSH_SECONDS=$(since "$start")
k wait --for=condition=Ready node/kforge-m4 --timeout=120s >/dev/null || fail "machine 4 not Ready after join --ssh"

log "kforge reset -f"
"$KFORGE" reset -f "$CLUSTER" --force >"$STATE/reset.log" 2>&1 || { tail -30 "$STATE/reset.log"; fail "reset -f"; }
grep -A6 '^Reset:' "$STATE/reset.log"
for m in 1 2 3 4; do
  left=$(on "$m" 'find /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/cni/net.d /etc/containerd/certs.d -mindepth 1 2>/dev/null | head -3; ls /var/lib/kforge/registry-auth.json 2>/dev/null; pgrep -x kubelet; ip link show kube-bridge 2>/dev/null | head -1' || true)
  [ -z "$left" ] || fail "reset left on machine $m: $left"
done

printf '\ne2e-multinode passed: init -f (1 control plane + 2 workers, 4th down) %ss; 2 workers joined in parallel in %s; 1 worker alone in %s; wrong-hash join failed in %ss; converging re-init %ss; join --ssh %ss\n' \
  "$INIT_SECONDS" "$JOIN2" "$JOIN1" "$WRONG_SECONDS" "$REINIT_SECONDS" "$JOINSSH_SECONDS"
