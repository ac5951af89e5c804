#!/usr/bin/env bash
# kforge's `runtime: host` end-to-end test (part of make e2e-versions): on
# this machine, whose Debian containerd is 1.6 (make deps installs it),
# `kforge init` with a cluster file that says `runtime: host` must
#   - refuse Kubernetes v1.37.2 in preflight (it needs containerd 2.x),
#     before anything is written;
#   - build a Ready node on Kubernetes v1.35.4 with the host's own
#     containerd, installing neither containerd nor runc;
# and `kforge reset` must leave the host's containerd where it was.
#
# It changes this machine: it needs root and resets any cluster kforge made
# here, first and last. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

KFORGE=${KFORGE:-bin/kforge}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BUNDLE_OLD=${BUNDLE_OLD:?set BUNDLE_OLD to the v1.35.4 bundle}
BUNDLE_NEW=${BUNDLE_NEW:?set BUNDLE_NEW to the v1.37.2 bundle}
DIR=$(mktemp -d)
export KUBECONFIG=$DIR/admin.conf

fail() {
  printf 'e2e runtime-host FAILED: %s\n' "$*" >&2
  set +e
  "$KUBECTL" --request-timeout=10s get nodes -o wide
  exit 1
}
cleanup() {
  local rc=$?
  "$KFORGE" reset --force >/dev/null 2>&1 || true
  rm -rf "$DIR"
  exit $rc
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root"
exec 8>/run/kforge-node.lock
flock -w 1800 8 || fail "another kforge e2e or bench holds /run/kforge-node.lock"
[ -x /usr/bin/containerd ] || fail "no Debian containerd at /usr/bin/containerd (make deps installs it)"
"$KFORGE" reset --force >/dev/null

cluster() { # VERSION
  cat >"$DIR/kforge.yaml" <<EOF
apiVersion: kforge.dev/v1alpha1
kind: Cluster
kubernetesVersion: $1
runtime: host
hosts:
  - {local: true, role: control-plane}
EOF
}

cluster v1.37.2
before=$(sha256sum /etc/containerd/config.toml 2>/dev/null || true)
if out=$("$KFORGE" init -f "$DIR/kforge.yaml" --bundle "$BUNDLE_NEW" --kubeconfig-out "$KUBECONFIG" 2>&1); then
  fail "init of v1.37.2 on containerd 1.6 succeeded"
fi
grep -q "preflight" <<<"$out" && grep -q "needs v2.0.0 or newer" <<<"$out" || fail "v1.37.2 on containerd 1.6 was not refused in preflight: $out"
for p in /etc/kubernetes/pki /var/lib/kforge/run.json /usr/local/bin/kubelet; do
  [ ! -e "$p" ] || fail "the refused init wrote $p"
done
[ "$(sha256sum /etc/containerd/config.toml 2>/dev/null || true)" = "$before" ] || fail "the refused init changed /etc/containerd/config.toml"
echo "refused: Kubernetes v1.37.2 on the host's containerd 1.6, in preflight, nothing written"

cluster v1.35.4
"$KFORGE" init -f "$DIR/kforge.yaml" --bundle "$BUNDLE_OLD" --kubeconfig-out "$KUBECONFIG" >"$DIR/init.log" 2>&1 ||
  { tail -20 "$DIR/init.log"; fail "init of v1.35.4 with runtime: host"; }
"$KUBECTL" --request-timeout=20s wait --for=condition=Ready node --all --timeout=120s >/dev/null || fail "node not Ready"
runtime=$("$KUBECTL" get nodes -o jsonpath='{.items[0].status.nodeInfo.containerRuntimeVersion}')
[[ "$runtime" == containerd://1.6.* ]] || fail "the node's runtime is $runtime, not the host's containerd 1.6"
for b in containerd runc ctr containerd-shim-runc-v2; do
  [ ! -e "/usr/local/bin/$b" ] || fail "runtime: host installed /usr/local/bin/$b"
done
pid=$(ss -Hxlp | awk '$5 == "/run/containerd/containerd.sock" {print $NF}' | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
[ "$(readlink "/proc/${pid:-0}/exe")" = /usr/bin/containerd ] || fail "the socket is not served by the host's /usr/bin/containerd (pid ${pid:-none})"
"$KUBECTL" -n kube-system wait --for=condition=Ready pod -l component=kube-apiserver --timeout=60s >/dev/null || fail "the API server's pod is not Ready"
echo "runtime: host: Kubernetes v1.35.4 Ready on $runtime, no runtime installed from the bundle"

"$KFORGE" reset --force >/dev/null || fail "reset"
[ -x /usr/bin/containerd ] || fail "reset removed the host's containerd"
[ ! -e /etc/systemd/system/containerd.service ] || fail "reset left a containerd unit"
[ "$(sha256sum /etc/containerd/config.toml 2>/dev/null || true)" = "$before" ] || fail "reset did not put back the host's /etc/containerd/config.toml"
echo "e2e runtime-host passed"
