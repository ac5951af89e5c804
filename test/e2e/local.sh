#!/usr/bin/env bash
# kforge's single-node end-to-end test (make e2e-local): on this machine,
# from the bundle `make artifacts` builds, `kforge up --local` must give a
# working cluster that the machine's own kubectl can use, a second `up` must
# be a fast no-op, and `kforge reset` must leave nothing behind, after which
# `up` works again.
#
# It changes this machine: it needs root and resets any cluster kforge made
# here, first and last. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE=${BUNDLE:?set BUNDLE to the path make artifacts prints}
# The host's own containerd config (Debian's containerd package has one),
# which kforge keeps aside while its own is in place and reset puts back.
HOST_CONTAINERD_CONFIG=$(sha256sum /etc/containerd/config.toml 2>/dev/null || true)
# The test registry: go build -o bin/e2e-registry ./test/registry
REGISTRY=${REGISTRY:-bin/e2e-registry}
# KUBERNETES_VERSION: the bundle's version when it is not the default
# (make e2e-versions runs this test once per supported version).
VERSION_FLAG=(${KUBERNETES_VERSION:+--kubernetes-version "$KUBERNETES_VERSION"})
export KUBECONFIG=${KUBECONFIG_E2E:-$(mktemp -d)/config}
NS=kforge-e2e

log() { printf '\n=== %s\n' "$*"; }
fail() { printf 'e2e-local FAILED: %s\n' "$*" >&2; diagnose; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
k() { "$KUBECTL" --request-timeout=20s "$@"; }

diagnose() {
  set +e
  echo "--- nodes and pods"; k get nodes -o wide; k get pods -A -o wide
  echo "--- events"; k get events -A --sort-by=.lastTimestamp | tail -30
  echo "--- supervisor"; /var/lib/kforge/bin/kforge supervise status --state-dir /var/lib/kforge/supervisor
  echo "--- kubelet log"; tail -40 /var/log/kforge/kubelet.log
}

# A user of this machine who runs kforge through sudo; made and removed by
# this test.
SUDO_TEST_USER=kforge-e2e-user

cleanup() {
  local rc=$?
  [ "${KEEP:-}" = 1 ] || "$KFORGE" reset --force >/dev/null 2>&1 || true
  userdel -r "$SUDO_TEST_USER" >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root"
# One cluster per machine: the e2e and the bench take turns.
exec 8>/run/kforge-node.lock
flock -w 1800 8 || fail "another kforge e2e or bench holds /run/kforge-node.lock"
[ -x "$KUBECTL" ] || fail "no kubectl at $KUBECTL"
"$KFORGE" reset --force >/dev/null

# up waits for the node and the add-ons itself; the checks below are made
# with an independent client.
up() {
  local start out
  start=$(now)
  out=$("$KFORGE" up --local --bundle "$BUNDLE" "${VERSION_FLAG[@]}" --kubeconfig "$KUBECONFIG" 2>&1) || { echo "$out"; fail "kforge up --local"; }
  echo "$out"
  UP_SECONDS=$(since "$start")
  UP_START=$start
}

check_cluster() {
  k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "node not Ready"
  NODE_READY_SECONDS=$(since "$UP_START")
  # The versions asked for, and the runtime from the bundle (not the
  # machine's Debian containerd).
  local want server kubelet runtime
  want=$("$KFORGE" bundle inspect --json "$BUNDLE" | jq -r .kubernetesVersion)
  server=$(k version -o json | jq -r .serverVersion.gitVersion)
  kubelet=$(k get nodes -o jsonpath='{.items[0].status.nodeInfo.kubeletVersion}')
  runtime=$(k get nodes -o jsonpath='{.items[0].status.nodeInfo.containerRuntimeVersion}')
  [ "$server" = "$want" ] && [ "$kubelet" = "$want" ] || fail "API server $server, kubelet $kubelet; the bundle is $want"
  [[ "$runtime" == containerd://2.* ]] || fail "the node's runtime is $runtime, not the bundle's containerd 2.x"
  pgrep -f '^/usr/local/bin/containerd ' >/dev/null || fail "containerd does not run from /usr/local/bin (the bundle's)"
  echo "versions: API server and kubelet $server, runtime $runtime from /usr/local/bin"
  [ "$(stat -c %a /var/lib/etcd)" = 700 ] || fail "/var/lib/etcd is $(stat -c %a /var/lib/etcd), not 0700"
  local i
  for sel in component=etcd component=kube-apiserver component=kube-controller-manager component=kube-scheduler k8s-app=kube-proxy k8s-app=kube-dns; do
    # Mirror pods of static pods appear a moment after the node registers.
    for i in $(seq 1 120); do
      [ -n "$(k -n kube-system get pod -l "$sel" -o name)" ] && break
      sleep 0.5
    done
    k -n kube-system wait --for=condition=Ready pod -l "$sel" --timeout=120s >/dev/null || fail "pods $sel not Ready"
    echo "ready: $sel"
  done
}

check_workload() {
  # The workload's image comes in through `kforge images load`, as a user's
  # own image would.
  local archive
  archive=$(ls "${KFORGE_CACHE:-$HOME/.cache/kforge}"/staging/*/images/kforge.dev_echo_v1.tar | head -1)
  ctr -n k8s.io images rm kforge.dev/echo:v1 >/dev/null
  "$KFORGE" images load "$archive" --local >/dev/null || fail "kforge images load"
  ctr -n k8s.io images ls -q | grep -x kforge.dev/echo:v1 >/dev/null || fail "images load did not import kforge.dev/echo:v1"
  echo "kforge images load imported kforge.dev/echo:v1"
  k create namespace "$NS" >/dev/null
  k -n "$NS" apply -f test/e2e/web.yaml >/dev/null
  k -n "$NS" rollout status deployment/web --timeout=120s >/dev/null || fail "web deployment not available"
  k -n "$NS" run client --image=kforge.dev/echo:v1 --image-pull-policy=Never --restart=Never \
    --command -- /echo get "http://web.$NS.svc.cluster.local/" >/dev/null
  local i phase=""
  for i in $(seq 1 120); do
    phase=$(k -n "$NS" get pod client -o jsonpath='{.status.phase}')
    [ "$phase" = Succeeded ] || [ "$phase" = Failed ] && break
    sleep 0.5
  done
  local answer
  answer=$(k -n "$NS" logs client)
  [ "$phase" = Succeeded ] && [[ "$answer" == web-* ]] ||
    fail "the Service did not answer by name (phase $phase): $answer
$(k -n "$NS" get svc,endpointslices,pods -o wide 2>&1; k -n kube-system get pods -o wide 2>&1 | grep coredns)"
  SERVICE_SECONDS=$(since "$UP_START")
  echo "web.$NS.svc.cluster.local answered: $answer"
  local exec_out
  exec_out=$(k -n "$NS" exec deploy/web -- /echo get "http://web/healthz") || fail "kubectl exec"
  [ "$exec_out" = ok ] || fail "kubectl exec printed $exec_out"
  k -n "$NS" logs deploy/web | grep "serving on" >/dev/null || fail "kubectl logs shows no 'serving on'"
  echo "kubectl exec and logs work"
}

check_noop() {
  local before after start
  before=$(/var/lib/kforge/bin/kforge supervise status --state-dir /var/lib/kforge/supervisor | grep -o '"pid":[0-9]*' | tr '\n' ' ')
  start=$(now)
  "$KFORGE" up --local --bundle "$BUNDLE" "${VERSION_FLAG[@]}" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || fail "second kforge up"
  NOOP_SECONDS=$(since "$start")
  after=$(/var/lib/kforge/bin/kforge supervise status --state-dir /var/lib/kforge/supervisor | grep -o '"pid":[0-9]*' | tr '\n' ' ')
  [ "$before" = "$after" ] || fail "second up restarted services: $before -> $after"
  awk -v s="$NOOP_SECONDS" 'BEGIN{exit !(s < 15)}' || fail "second up took ${NOOP_SECONDS}s"
  k -n "$NS" get pod client >/dev/null || fail "second up lost the workload"
  echo "second up: ${NOOP_SECONDS}s, services not restarted"
}

# check_sudo_user runs up and reset as sudo runs them for a user (root,
# with SUDO_USER set and that user's KUBECONFIG gone): the kforge context
# lands in the user's ~/.kube/config, owned by the user and 0600, and the
# user's own kubectl reaches the cluster; reset takes the context out again.
check_sudo_user() {
  userdel -r "$SUDO_TEST_USER" >/dev/null 2>&1 || true
  useradd -m -s /bin/sh "$SUDO_TEST_USER" || fail "useradd $SUDO_TEST_USER"
  local home cfg
  home=$(getent passwd "$SUDO_TEST_USER" | cut -d: -f6)
  cfg=$home/.kube/config
  env -u KUBECONFIG SUDO_USER="$SUDO_TEST_USER" HOME=/root "$KFORGE" up --local --bundle "$BUNDLE" "${VERSION_FLAG[@]}" >/dev/null 2>&1 || fail "up under sudo"
  [ "$(stat -c '%U %a' "$cfg" 2>/dev/null)" = "$SUDO_TEST_USER 600" ] || fail "$cfg: $(stat -c '%U %a' "$cfg" 2>&1), want $SUDO_TEST_USER 600"
  [ "$(stat -c '%U' "$home/.kube")" = "$SUDO_TEST_USER" ] || fail "$home/.kube is not $SUDO_TEST_USER's"
  [ ! -e /root/.kube/config ] || ! grep -q 'name: kforge' /root/.kube/config || fail "up under sudo wrote root's kubeconfig"
  runuser -u "$SUDO_TEST_USER" -- env -u KUBECONFIG HOME="$home" "$KUBECTL" --request-timeout=20s get nodes >/dev/null ||
    fail "$SUDO_TEST_USER's kubectl cannot reach the cluster"
  env -u KUBECONFIG SUDO_USER="$SUDO_TEST_USER" HOME=/root "$KFORGE" reset --force >/dev/null 2>&1 || fail "reset under sudo"
  grep -q 'name: kforge' "$cfg" && fail "reset under sudo left the kforge context in $cfg"
  [ "$(stat -c '%U %a' "$cfg")" = "$SUDO_TEST_USER 600" ] || fail "reset under sudo changed $cfg's owner or mode"
  userdel -r "$SUDO_TEST_USER" >/dev/null 2>&1 || true
  echo "under sudo: $cfg is $SUDO_TEST_USER's (0600), their kubectl works, reset took the context out"
  # The checks after this one need the cluster again.
  up >/dev/null
}

# check_serving: the kubelet serves a certificate from the cluster CA,
# for its own address, approved by kforge's approver; the API server
# verifies kubelets with that CA (check_workload's logs and exec went
# through it).
check_serving() {
  local ip out reason
  ip=$(k get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
  openssl verify -CAfile /etc/kubernetes/pki/ca.crt /var/lib/kubelet/pki/kubelet-server-current.pem ||
    fail "the kubelet's serving certificate does not verify against the cluster CA"
  out=$(timeout 20 openssl s_client -connect "$ip:10250" -CAfile /etc/kubernetes/pki/ca.crt -verify_ip "$ip" -verify_return_error </dev/null 2>&1) ||
    { echo "$out" | tail -5; fail "the kubelet on $ip:10250 does not verify against the cluster CA"; }
  grep -q 'Verify return code: 0 (ok)' <<<"$out" || fail "openssl s_client to $ip:10250: $(grep 'Verify return code' <<<"$out")"
  grep -q -- '--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt' /etc/kubernetes/manifests/kube-apiserver.yaml ||
    fail "the API server does not verify kubelets"
  reason=$(k get csr -o json | jq -r '[.items[] | select(.spec.signerName == "kubernetes.io/kubelet-serving")][-1].status.conditions[0].reason')
  [ "$reason" = KforgeNodeServingCertificate ] || fail "the newest kubelet-serving CSR's condition is $reason, not kforge's approval"
  echo "kubelet serving certificate: $(openssl x509 -noout -issuer -in /var/lib/kubelet/pki/kubelet-server-current.pem), verified on $ip:10250; approved by kforge's approver"
  # A single node's kube-proxy follows endpoint changes within 0.1 s: the
  # running kube-proxy took the floor from its ConfigMap.
  k -n kube-system get configmap kube-proxy -o jsonpath='{.data.config\.conf}' | grep -q '^  minSyncPeriod: 100ms$' ||
    fail "kube-proxy's configuration lacks iptables.minSyncPeriod: 100ms"
  curl -s --max-time 5 http://127.0.0.1:10249/configz | jq -e '.["kubeproxy.config.k8s.io"].iptables.minSyncPeriod == "100ms"' >/dev/null ||
    fail "the running kube-proxy's iptables.minSyncPeriod is not 100ms (http://127.0.0.1:10249/configz)"
}

# check_addons: a claim of the default StorageClass (local-path) binds and
# keeps what a pod wrote, on this node's disk; kubectl top answers, through
# metrics-server verifying the kubelet against the cluster CA.
check_addons() {
  local img i start
  [ "$(k get storageclass local-path -o jsonpath='{.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}')" = true ] ||
    fail "local-path is not the default StorageClass"
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
  k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/writer --timeout=120s >/dev/null ||
    fail "the pod writing to the claim did not succeed: $(k -n "$NS" get pvc,pod -o wide 2>&1 | tail -3)"
  [ "$(k -n "$NS" get pvc data -o jsonpath='{.status.phase}')" = Bound ] || fail "the claim is not Bound"
  [ "$(k -n "$NS" logs writer)" = kept ] || fail "the pod did not read back what it wrote"
  ls /opt/local-path-provisioner/pvc-*/file >/dev/null 2>&1 || fail "the volume is not under /opt/local-path-provisioner on the node"
  echo "storage: claim data Bound by local-path, written and read back, on disk at $(ls -d /opt/local-path-provisioner/pvc-* | head -1)"
  start=$(now)
  for i in $(seq 1 60); do
    out=$(k top node 2>/dev/null) && break
    sleep 2
  done
  [ -n "${out:-}" ] || fail "kubectl top node did not answer in 120s: $(k top node 2>&1 | tail -1); $(k -n kube-system logs deploy/metrics-server --tail 5 2>&1)"
  echo "$out"
  echo "kubectl top node answered $(since "$start")s after the check began"
  for i in $(seq 1 30); do
    k top pod -n kube-system --no-headers 2>/dev/null | grep -q '^kube-apiserver-' && break
    sleep 2
  done
  k top pod -n kube-system --no-headers 2>/dev/null | grep '^kube-apiserver-' || fail "kubectl top pod does not show the API server"
  k -n "$NS" delete pod writer --wait=false >/dev/null
}

# check_status: kforge status shows a healthy cluster, then names the
# scheduler once its static pod is gone, and is healthy again once it is
# back.
# A private registry (go-containerregistry's, TLS from its own CA, Basic
# auth) on loopback serves docker.io/kforge-e2e/echo:mirror, an image no
# public registry has, and the add-ons' images under k8s/: a cluster file
# whose registries make it docker.io's mirror, with its CA and credentials
# by reference, and whose imageRepository names it, must get a pod running
# through the mirror and the add-ons running from the registry; `up` with
# the defaults again puts the bundle's images back and removes the
# registry's files.
check_mirror() {
  local dir pid out i img ref archive archives=()
  dir=$(mktemp -d)
  # An earlier run's copies would hide the pulls: everything must be fetched.
  ctr -n k8s.io images ls -q | { grep '^127.0.0.1:5443/' || true; } | xargs -r ctr -n k8s.io images rm >/dev/null
  # The add-ons' images as the bundle build left them, one archive each.
  for img in $(k -n kube-system get deploy coredns metrics-server -o jsonpath='{..containers[0].image}') \
      $(k -n local-path-storage get deploy local-path-provisioner -o jsonpath='{..containers[0].image}'); do
    archive=$(ls "${KFORGE_CACHE:-$HOME/.cache/kforge}"/staging/*/images/"$(tr '/:' '__' <<<"$img")".tar 2>/dev/null | head -1 || true)
    [ -f "$archive" ] || fail "no archive of $img in the bundle's staging directory"
    archives+=(--push "$archive")
  done
  export KFORGE_E2E_REGISTRY_USER=kforge-e2e
  KFORGE_E2E_REGISTRY_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  export KFORGE_E2E_REGISTRY_PASSWORD
  (umask 077; printf '%s\n' "$KFORGE_E2E_REGISTRY_PASSWORD" >"$dir/password")
  "$REGISTRY" --addr 127.0.0.1:5443 --dir "$dir" "${archives[@]}" >"$dir/requests.log" 2>"$dir/registry.err" &
  pid=$!
  for i in $(seq 60); do grep -q '^ready ' "$dir/requests.log" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  grep -q '^ready ' "$dir/requests.log" || { cat "$dir/registry.err"; fail "the test registry did not start"; }
  cat >"$dir/cluster.yaml" <<YAML
apiVersion: kforge.dev/v1alpha1
kind: Cluster
hosts: [{local: true, role: control-plane}]
imageRepository: 127.0.0.1:5443/k8s
registries:
  docker.io:
    mirrors: [https://127.0.0.1:5443]
  127.0.0.1:5443:
    ca: $dir/ca.crt
    auth:
      usernameFrom: env:KFORGE_E2E_REGISTRY_USER
      passwordFrom: file:$dir/password
YAML
  out=$("$KFORGE" up --local -f "$dir/cluster.yaml" --bundle "$BUNDLE" "${VERSION_FLAG[@]}" --kubeconfig "$KUBECONFIG" 2>&1) || { echo "$out"; kill "$pid"; fail "kforge up -f with registries"; }
  grep -qF "$KFORGE_E2E_REGISTRY_PASSWORD" <<<"$out" && fail "up printed the registry password"
  [ "$(stat -c %a /etc/containerd/config.toml)" = 600 ] || fail "containerd's config holds credentials and is not 0600"
  grep -q 'https://127.0.0.1:5443' /etc/containerd/certs.d/docker.io/hosts.toml || fail "no docker.io hosts.toml with the mirror"
  ctr -n k8s.io images rm docker.io/kforge-e2e/echo:mirror >/dev/null 2>&1 || true
  k -n "$NS" run mirror --image docker.io/kforge-e2e/echo:mirror --image-pull-policy=Always --restart=Never --port 8080 >/dev/null || fail "create the mirror pod"
  k -n "$NS" wait --for=condition=Ready pod/mirror --timeout=120s >/dev/null ||
    { k -n "$NS" describe pod mirror | tail -15; cat "$dir/requests.log"; kill "$pid"; fail "the pod's image did not come through the mirror"; }
  grep -q '/v2/kforge-e2e/echo/manifests/mirror?ns=docker.io 200$' "$dir/requests.log" || { cat "$dir/requests.log"; kill "$pid"; fail "the mirror saw no authenticated manifest pull for docker.io"; }
  grep -q ' 401$' "$dir/requests.log" || { kill "$pid"; fail "the registry never challenged containerd: the credentials path went untested"; }
  echo "pod mirror Running from docker.io/kforge-e2e/echo:mirror, pulled through https://127.0.0.1:5443 ($(grep -c ' 200$' "$dir/requests.log") authenticated requests)"
  for d in kube-system/coredns kube-system/metrics-server local-path-storage/local-path-provisioner; do
    k -n "${d%/*}" rollout status deployment "${d#*/}" --timeout=120s >/dev/null || { k -n "${d%/*}" describe deploy "${d#*/}" | tail -20; kill "$pid"; fail "$d did not roll out from imageRepository"; }
    img=$(k -n "${d%/*}" get deploy "${d#*/}" -o jsonpath='{..containers[0].image}')
    [[ "$img" == 127.0.0.1:5443/k8s/* ]] || { kill "$pid"; fail "$d runs $img, not from imageRepository"; }
    ref=${img#127.0.0.1:5443/k8s/}
    grep -Eq "(HEAD|GET) /v2/k8s/${ref%:*}/manifests/.* 200$" "$dir/requests.log" || { cat "$dir/requests.log"; kill "$pid"; fail "no pull of $img reached the registry"; }
  done
  echo "CoreDNS, metrics-server and local-path-provisioner rolled out from imageRepository 127.0.0.1:5443/k8s"
  k -n "$NS" delete pod mirror --wait=false >/dev/null
  ctr -n k8s.io images rm docker.io/kforge-e2e/echo:mirror >/dev/null 2>&1 || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  out=$("$KFORGE" up --local --bundle "$BUNDLE" "${VERSION_FLAG[@]}" --kubeconfig "$KUBECONFIG" 2>&1) || { echo "$out"; fail "kforge up back to the defaults"; }
  [ -e /etc/containerd/certs.d/docker.io ] && fail "up without registries left docker.io's hosts.toml"
  [ -e /var/lib/kforge/registry-auth.json ] && fail "up without registries left the stored credentials"
  grep -q 'password =' /etc/containerd/config.toml && fail "up without registries left credentials in containerd's config"
  k -n kube-system rollout status deployment coredns --timeout=120s >/dev/null || fail "coredns did not roll back to the bundle's image"
  [[ "$(k -n kube-system get deploy coredns -o jsonpath='{..containers[0].image}')" == registry.k8s.io/* ]] || fail "coredns kept the registry's image"
  ctr -n k8s.io images ls -q | { grep '^127.0.0.1:5443/' || true; } | xargs -r ctr -n k8s.io images rm >/dev/null
  rm -rf "$dir"
  echo "up with the defaults removed the registry's files"
}

# kforge explain maps the cluster from its live facts and traces the web
# Deployment to its running containers, in English and in Chinese.
check_explain() {
  local out lang want
  out=$("$KFORGE" explain) || { echo "$out"; fail "kforge explain"; }
  echo "$out"
  for want in 'etcd — the only state' '/var/lib/etcd' 'MiB' 'Node,RBAC' 'client certificates (x509)' 'unix:///run/containerd/containerd.sock' \
      'containerd://2.' '10-kforge-bridge.conflist' '10.244.0.0/24' 'rancher.io/local-path (default)' 'kube-system/kube-proxy 1/1' '10.96.0.10'; do
    grep -qF -- "$want" <<<"$out" || { echo "$out"; fail "kforge explain lacks '$want'"; }
  done
  for lang in en zh; do
    out=$("$KFORGE" explain deployment web -n "$NS" --lang "$lang") || { echo "$out"; fail "kforge explain deployment web --lang $lang"; }
    echo "$out"
    [ "$(grep -c '^✓ [1-7]\. ' <<<"$out")" = 7 ] || fail "explain deployment web --lang $lang: want the 7 steps done"
    for want in 'ownerReference → Deployment web' 'ScalingReplicaSet (deployment-controller)' 'SuccessfulCreate (replicaset-controller)' \
        'Scheduled (default-scheduler)' 'Started (kubelet)' 'containerd://' 'EndpointSlice web-' 'ready=true'; do
      grep -qF -- "$want" <<<"$out" || fail "explain deployment web --lang $lang lacks '$want'"
    done
  done
  grep -qF '调度器把 Pod 绑定到节点' <<<"$out" || fail "explain --lang zh is not in Chinese"
  out=$("$KFORGE" explain pod "$(k -n "$NS" get pod -l app=web -o jsonpath='{.items[0].metadata.name}')" -n "$NS" -o json) || fail "explain pod -o json"
  [ "$(jq '[.steps[] | select(.done)] | length' <<<"$out")" = 7 ] || fail "explain pod -o json: want 7 steps done: $out"
}

check_status() {
  local out i
  out=$("$KFORGE" status) || { echo "$out"; fail "kforge status on a healthy cluster"; }
  echo "$out"
  for want in 'KUBELET /healthz' 'kube-apiserver: static pod kube-system/kube-apiserver-' '/readyz ok' 'config: /etc/kubernetes/manifests/etcd.yaml' \
      'log:    /var/log/kforge/kubelet.log' ' leader ' 'containerd v2' 'kforge token create --print-join-command'; do
    grep -qF -- "$want" <<<"$out" || fail "kforge status lacks '$want'"
  done
  [ "$("$KFORGE" status -o json | jq '[.components[] | select(.healthy)] | length')" = 6 ] || fail "status -o json: want 6 healthy components"
  out=$(LANG=zh_CN.UTF-8 "$KFORGE" status) || { echo "$out"; fail "kforge status in Chinese"; }
  echo "$out"
  for want in '集群 kubernetes，Kubernetes v1.' '上的控制平面：' '健康:' '日志:' '加入节点：kforge token create'; do
    grep -qF -- "$want" <<<"$out" || { echo "$out"; fail "kforge status under LANG=zh_CN.UTF-8 lacks '$want'"; }
  done
  mv /etc/kubernetes/manifests/kube-scheduler.yaml "$(dirname "$KUBECONFIG")/"
  for i in $(seq 1 60); do
    out=$("$KFORGE" status 2>&1) || break
    sleep 1
  done
  mv "$(dirname "$KUBECONFIG")/kube-scheduler.yaml" /etc/kubernetes/manifests/
  grep -q 'kube-scheduler on .*' <<<"$out" || fail "status did not name the missing scheduler: $(tail -3 <<<"$out")"
  echo "without the scheduler: $(grep 'kube-scheduler on' <<<"$out" | tail -1)"
  for i in $(seq 1 90); do
    "$KFORGE" status >/dev/null 2>&1 && break
    sleep 1
  done
  "$KFORGE" status >/dev/null || fail "status not healthy again after the scheduler came back"
}

# check_doctor: nothing wrong on a healthy cluster; a pod whose image no
# node has is named, as is a program holding the kubelet's port (after
# reset, in check_doctor_ports).
check_doctor() {
  local out i
  out=$("$KFORGE" doctor) || { echo "$out"; fail "kforge doctor on a healthy cluster"; }
  echo "$out"
  k -n "$NS" run missing-image --image=kforge.dev/missing:v1 --image-pull-policy=Never --restart=Never >/dev/null
  for i in $(seq 1 60); do
    out=$("$KFORGE" doctor 2>&1) && sleep 1 || break
  done
  echo "$out"
  grep -q "\[images\] pod $NS/missing-image: missing-image waits for image kforge.dev/missing:v1, which no node's containerd has" <<<"$out" ||
    fail "doctor did not name the pod waiting for a missing image"
  out=$("$KFORGE" doctor --lang zh 2>&1) && fail "doctor --lang zh found nothing"
  echo "$out" | head -2
  grep -q "missing-image 在等待镜像 kforge.dev/missing:v1，但没有任何节点的 containerd 有它" <<<"$out" && grep -q "处理：" <<<"$out" ||
    fail "doctor --lang zh did not name the missing image in Chinese: $out"
  k -n "$NS" delete pod missing-image --wait=false >/dev/null
}

check_doctor_ports() {
  local out pid
  python3 -m http.server 10250 --bind 127.0.0.1 >/dev/null 2>&1 &
  pid=$!
  for i in $(seq 1 50); do ss -Hltn 'sport = :10250' | grep -q . && break; sleep 0.1; done
  out=$("$KFORGE" doctor 2>&1) && { kill $pid; fail "doctor found nothing with port 10250 taken"; }
  kill $pid
  echo "$out"
  grep -q '\[ports\] localhost: port 10250, which kubelet needs, is held by python3' <<<"$out" || fail "doctor did not name the program on port 10250"
}

# check_certs: every certificate of the new node is listed, a year left on
# the leaves; a window longer than that fails, naming them; JSON for
# programs.
check_certs() {
  local out
  out=$("$KFORGE" certs check-expiration) || { echo "$out"; fail "certs check-expiration on a new cluster"; }
  echo "$out" | head -4
  for c in 'ca (CA)' apiserver etcd-server admin.conf kubelet-client kubelet-serving; do
    grep -q "^$c " <<<"$out" || fail "certs check-expiration lacks $c"
  done
  grep -E '^apiserver .* (364d|365d) ' <<<"$out" >/dev/null || fail "the API server's certificate should have a year left: $(grep '^apiserver ' <<<"$out")"
  if out=$("$KFORGE" certs check-expiration --warn-within 9000h 2>&1); then fail "a 9000h window passed"; fi
  grep -q 'localhost: apiserver expires' <<<"$out" || fail "the failure does not name the API server's certificate: $out"
  n=$("$KFORGE" certs check-expiration -o json | jq '[.hosts[0].certificates[] | select(.renewedBy == "kforge")] | length')
  [ "$n" -ge 14 ] || fail "certs check-expiration -o json lists $n certificates kforge renews, want 14 or more"
}

# check_token: a fresh token's join command pins this cluster's CA, and the
# token's Secret expires when --ttl says.
check_token() {
  local line id exp left
  line=$("$KFORGE" token create --ttl 1h --print-join-command 2>/dev/null) || fail "token create"
  grep -Eq '^kforge join [0-9.]+:6443 --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}$' <<<"$line" || fail "token create printed: $line"
  [ "${line##*sha256:}" = "$(openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)" ] || fail "the join command's CA hash is not this cluster's"
  id=$(sed -E 's/.*--token ([a-z0-9]{6})\..*/\1/' <<<"$line")
  exp=$(k -n kube-system get secret "bootstrap-token-$id" -o jsonpath='{.data.expiration}' | base64 -d)
  left=$(( $(date -d "$exp" +%s) - $(date +%s) ))
  [ "$left" -gt 3300 ] && [ "$left" -le 3600 ] || fail "token $id expires in ${left}s, want about an hour"
  echo "token create: $id, expires in ${left}s, join command pins the CA"
}

# check_renew: new serials and a name added in place, the control plane
# restarted one component at a time, the cluster still answering.
check_renew() {
  local before after start out
  before=$(openssl x509 -noout -serial -in /etc/kubernetes/pki/apiserver.crt)
  start=$(now)
  out=$("$KFORGE" certs renew all --apiserver-cert-extra-sans renewed.kforge.test 2>&1) || { echo "$out"; fail "certs renew all"; }
  RENEW_SECONDS=$(since "$start")
  after=$(openssl x509 -noout -serial -in /etc/kubernetes/pki/apiserver.crt)
  [ "$before" != "$after" ] || fail "certs renew all left the API server's certificate"
  openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/apiserver.crt | grep -q 'DNS:renewed.kforge.test' || fail "the renewed API server certificate lacks the extra SAN"
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    grep -q "\[ok\] restart $c " <<<"$out" || fail "certs renew did not restart $c: $out"
  done
  k get nodes >/dev/null || fail "the cluster does not answer after certs renew"
  k wait --for=condition=Ready -n kube-system pod -l tier=control-plane --timeout=120s >/dev/null || fail "the control plane is not Ready after certs renew"
  "$KFORGE" certs check-expiration >/dev/null || fail "certs check-expiration fails after certs renew"
  echo "certs renew all: ${RENEW_SECONDS}s, 4 components restarted one at a time"
}

# check_snapshot: a ConfigMap made before the snapshot is back after the
# restore, one made after it is gone, and the node is Ready.
check_snapshot() {
  local snap out start
  snap=$(dirname "$KUBECONFIG")/etcd.snapshot
  k -n "$NS" create configmap before-snapshot --from-literal=v=1 >/dev/null || fail "create configmap before-snapshot"
  out=$("$KFORGE" etcd snapshot save "$snap" 2>&1) || { echo "$out"; fail "etcd snapshot save"; }
  grep -o 'snapshot .*: revision .*' <<<"$out"
  [ "$(stat -c %a "$snap")" = 600 ] || fail "the snapshot is $(stat -c %a "$snap"), want 600"
  k -n "$NS" delete configmap before-snapshot >/dev/null || fail "delete configmap before-snapshot"
  k -n "$NS" create configmap after-snapshot --from-literal=v=2 >/dev/null || fail "create configmap after-snapshot"
  start=$(now)
  out=$("$KFORGE" etcd snapshot restore "$snap" 2>&1) || { echo "$out"; fail "etcd snapshot restore"; }
  RESTORE_SECONDS=$(since "$start")
  k -n "$NS" get configmap before-snapshot >/dev/null 2>&1 || fail "the ConfigMap from before the snapshot is not back"
  k -n "$NS" get configmap after-snapshot >/dev/null 2>&1 && fail "the ConfigMap made after the snapshot survived the restore"
  k wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "nodes not Ready after the restore"
  k wait --for=condition=Ready -n kube-system pod -l tier=control-plane --timeout=120s >/dev/null || fail "the control plane is not Ready after the restore"
  rm -rf /var/lib/etcd.kforge-before-restore
  echo "etcd snapshot restore: ${RESTORE_SECONDS}s; before-snapshot back, after-snapshot gone, node Ready"
  # The restored member is the whole cluster, healthy and leading.
  out=$("$KFORGE" etcd members) || { echo "$out"; fail "etcd members after the restore"; }
  echo "$out"
  [ "$("$KFORGE" etcd members -o json | jq '[.members[] | select(.healthy and .leader)] | length')" = 1 ] ||
    fail "etcd members: want one healthy leader"
}

check_reset() {
  # Another tool's CNI config stays (kforge removes only its own).
  local other=/etc/cni/net.d/99-kforge-e2e-other-tool.conflist
  printf '{"cniVersion": "1.0.0", "name": "other", "plugins": [{"type": "loopback"}]}\n' >"$other"
  "$KFORGE" reset --force --kubeconfig "$KUBECONFIG" || fail "kforge reset"
  [ -f "$other" ] || fail "reset removed another tool's $other"
  rm -f "$other"
  local d left
  for d in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /etc/cni/net.d; do
    left=$(find "$d" -mindepth 1 2>/dev/null | head -5 || true)
    [ -z "$left" ] || fail "reset left files in $d: $left"
  done
  ss -Hltn | awk '{print $4}' | grep -E ':(6443|2379|2380|10250)$' && fail "reset left a listener"
  ip link show cni0 >/dev/null 2>&1 && fail "reset left cni0"
  iptables-save | grep 'KUBE-' >/dev/null && fail "reset left KUBE- iptables chains"
  pgrep -x kubelet >/dev/null && fail "reset left a kubelet running"
  pgrep -f '^/usr/local/bin/containerd ' >/dev/null && fail "reset left containerd running"
  for b in kubelet containerd containerd-shim-runc-v2 ctr runc crictl; do
    [ -e "/usr/local/bin/$b" ] && fail "reset left /usr/local/bin/$b"
  done
  [ "$(sha256sum /etc/containerd/config.toml 2>/dev/null || true)" = "$HOST_CONTAINERD_CONFIG" ] ||
    fail "reset left the bundle's containerd's config instead of the host's own (or none)"
  [ -e /var/lib/kforge/bootstrap-token ] && fail "reset left the stored join token"
  grep -q 'name: kforge' "$KUBECONFIG" && fail "reset left the kforge context"
  echo "reset left a clean machine"
}

log "kforge up --local"
up
check_cluster
FIRST_UP=$UP_SECONDS FIRST_READY=$NODE_READY_SECONDS
check_workload
log "the kubelet's serving certificate"
check_serving
log "the add-ons: local-path storage and metrics-server"
check_addons
log "registries: a pull through a private mirror with its CA and credentials"
check_mirror
log "kforge status"
check_status
log "kforge explain"
check_explain
log "kforge doctor"
check_doctor
log "kforge certs check-expiration"
check_certs
log "kforge token create --print-join-command"
check_token
log "second kforge up --local"
check_noop
log "kforge certs renew all"
check_renew
log "kforge etcd snapshot save, a change, restore"
check_snapshot
log "under sudo, up and reset edit the invoking user's kubeconfig"
check_sudo_user
log "kforge reset"
check_reset
log "kforge doctor names a program on the kubelet's port"
check_doctor_ports
log "kforge up --local killed midway, then run again"
for t in 1 3; do
  timeout -s KILL "$t" "$KFORGE" up --local --bundle "$BUNDLE" "${VERSION_FLAG[@]}" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || true
  echo "killed after ${t}s"
done
up
check_cluster
log "kforge reset"
check_reset

log "a second kforge up while one runs is refused"
"$KFORGE" up --local --bundle "$BUNDLE" "${VERSION_FLAG[@]}" --kubeconfig "$KUBECONFIG" >"$(dirname "$KUBECONFIG")/first-up.log" 2>&1 &
first=$!
sleep 1
if out=$("$KFORGE" up --local --bundle "$BUNDLE" "${VERSION_FLAG[@]}" --kubeconfig "$KUBECONFIG" 2>&1); then
  wait "$first"
  fail "a second kforge up ran beside the first"
fi
grep -q "another kforge run holds localhost's lock (/run/kforge.lock; pid $first on .*: kforge up" <<<"$out" ||
  { wait "$first"; fail "the second up was refused without naming the first: $out"; }
wait "$first" || { cat "$(dirname "$KUBECONFIG")/first-up.log"; fail "the first up failed beside the refused second"; }
echo "refused: $(grep -o 'another kforge run holds[^)]*)' <<<"$out")"
check_reset

printf '\ne2e-local passed: up %ss, node Ready %ss, Service by name %ss, second up %ss\n' \
  "$FIRST_UP" "$FIRST_READY" "$SERVICE_SECONDS" "$NOOP_SECONDS"
