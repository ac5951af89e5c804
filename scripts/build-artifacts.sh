#!/usr/bin/env bash
# Builds, from source fetched through the Go module proxy, every binary kforge
# installs on nodes or puts into images, for pinned versions, into a cache
# outside the repository:
#
#   ${KFORGE_CACHE:-$HOME/.cache/kforge}/
#     bin/<component>/<version>/<binary>   the results (plus a .stamp file)
#     work/<component>/<version>/          generated wrapper modules
#     logs/<component>-<version>.log       output of the last build
#
# A component whose binaries exist and whose stamp matches (version, the hash
# of its build recipe, the Go version) is skipped, so a second run takes
# seconds. A build goes into a temporary directory that is renamed into place
# only when every binary is there: the cache never holds half-written output.
#
# Usage: scripts/build-artifacts.sh [--list] [component...]
#   components: kubernetes etcd coredns pause kube-router cni-plugins
#   containerd runc crictl metrics-server local-path-provisioner (default:
#   all, in that order). --list prints the
#   binary paths instead of building (exit 1 if any is missing).
#   --default-version prints the default Kubernetes version,
#   --supported-versions every supported one.
#   KUBERNETES_VERSIONS="v1.36.3 v1.37.2" builds the per-version components
#   (kubernetes, etcd, coredns, pause) of each of those versions; the
#   default is the newest supported version.
#
# Builds run one at a time under `nice -n 10`: the machines have two cores and
# other builds share them.
set -euo pipefail

# ---------------------------------------------------------------------------
# Pinned versions. images/versions.go has the same table and its test parses
# these lines: keep the table's rows as "KUBERNETES ETCD COREDNS PAUSE" and
# the other pins as NAME_VERSION=value.
#
# etcd, CoreDNS and pause of each row are the versions kubeadm of that
# Kubernetes version deploys (cmd/kubeadm/app/constants/constants.go:
# DefaultEtcdVersion, CoreDNSVersion, PauseVersion). The rows are the latest
# patch of the three newest minors the Go module proxy serves; the last row
# is the default.
VERSION_TABLE="
v1.35.4 v3.6.6 v1.13.1 3.10.1
v1.36.3 v3.6.8 v1.14.2 3.10.2
v1.37.2 v3.7.0 v1.14.6 3.10.2
"
# The same for every Kubernetes version: the pod network, the CNI plugins
# and the container runtime (containerd 2.x, which Kubernetes 1.36 and
# newer require, its runc, and crictl).
KUBE_ROUTER_VERSION=v2.1.0
CNI_PLUGINS_VERSION=v1.9.1
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
CRICTL_VERSION=v1.37.0
# The add-ons a first cluster gets: metrics-server (kubectl top) and
# local-path-provisioner (a default StorageClass).
METRICS_SERVER_VERSION=v0.8.0
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30
# ---------------------------------------------------------------------------

ALL_COMPONENTS=(kubernetes etcd coredns pause kube-router cni-plugins containerd runc crictl metrics-server local-path-provisioner)
PER_VERSION_COMPONENTS=" kubernetes etcd coredns pause "

# row prints the table row of a Kubernetes version, or fails naming the
# supported ones.
row() {
  local r
  r="$(printf '%s\n' "$VERSION_TABLE" | awk -v k="$1" '$1 == k')"
  [ -n "$r" ] || die "unsupported Kubernetes version $1; supported: $(printf '%s\n' "$VERSION_TABLE" | awk 'NF {printf "%s ", $1}')"
  printf '%s\n' "$r"
}
DEFAULT_KUBERNETES_VERSION="$(printf '%s\n' "$VERSION_TABLE" | awk 'NF {v = $1} END {print v}')"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELPERS_DIR="$SCRIPT_DIR/artifacts"
CACHE="${KFORGE_CACHE:-$HOME/.cache/kforge}"
BIN_ROOT="$CACHE/bin"
WORK_ROOT="$CACHE/work"
LOG_ROOT="$CACHE/logs"

export CGO_ENABLED=0
export GOTOOLCHAIN=local
# The wrapper modules are generated without a go.sum: -mod=mod lets the go
# command resolve and record their requirements.
export GOFLAGS="-mod=mod -buildvcs=false"

log() { printf '%s\n' "$*" >&2; }
die() { log "build-artifacts: $*"; exit 1; }

# run prints a command into the component's log and runs it at low priority.
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  nice -n 10 "$@"
}

# module_info prints the path of the cached .info or .mod file of a module
# version (downloading the module, so its source is in the module cache too).
# $1 module, $2 version, $3 Info|GoMod|Dir
module_file() {
  local json
  json="$(go mod download -json "$1@$2")" || die "cannot download $1@$2: $json"
  if printf '%s' "$json" | grep '"Error"' >/dev/null; then
    die "cannot download $1@$2: $(printf '%s' "$json" | grep '"Error"')"
  fi
  printf '%s\n' "$json" | sed -n "s/^[[:space:]]*\"$3\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p"
}

# release_date prints the module proxy's timestamp of a module version (the
# tag's commit time), used as the build date so rebuilds are reproducible.
release_date() {
  sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(module_file "$1" "$2" Info)"
}

# origin_commit prints the commit a module version was built from when the
# proxy recorded it (it does for some modules only), else nothing.
origin_commit() {
  sed -n 's/.*"Hash":"\([0-9a-f]\{40\}\)".*/\1/p' "$(module_file "$1" "$2" Info)"
}

# upstream_replaces reads an upstream go.mod and prints the replace
# directives a wrapper module needs, as arguments for `go mod edit -replace`.
# A replacement by a local directory (a module of the same repository, e.g.
# k8s.io/api => ./staging/src/k8s.io/api) becomes the same module at the
# sibling version $2; FORBIDDEN_DEPENDENCY guards are dropped; replacements by
# other module versions are kept as they are.
upstream_replaces() {
  awk -v sib="$2" '
    function emit(line,   parts, l, r, n, m) {
      sub(/\/\/.*/, "", line)
      if (split(line, parts, "=>") != 2) return
      n = split(parts[1], l, " "); m = split(parts[2], r, " ")
      if (n < 1 || m < 1) return
      if (r[1] ~ /^\.\.?\//) {
        if (r[1] ~ /FORBIDDEN_DEPENDENCY/) return
        print l[1] "=" l[1] "@" sib
      } else {
        print (n == 2 ? l[1] "@" l[2] : l[1]) "=" r[1] (m == 2 ? "@" r[2] : "")
      }
    }
    /^replace[ \t]*\(/ { block = 1; next }
    block && /^\)/     { block = 0; next }
    block              { emit($0); next }
    /^replace[ \t]/    { sub(/^replace[ \t]+/, ""); emit($0) }
  ' "$1"
}

# wrapper_module creates a module in directory $1 that requires modules of
# one repository so that their commands can be built with `go build`; `go
# install mod@version` refuses modules whose go.mod has replace directives.
# $2 sibling version for local replacements, $3 version of the required
# modules, $4... the required modules. The first module's go.mod gives the
# go line and godebug settings, so the binaries get upstream's GODEBUG
# defaults; the replacements of all of them are copied.
wrapper_module() {
  local dir=$1 sibling=$2 version=$3
  shift 3
  rm -rf "$dir"
  mkdir -p "$dir"
  local first_mod
  first_mod="$(module_file "$1" "$version" GoMod)"
  {
    printf 'module kforge.dev/artifacts/%s\n\n' "$(basename "$(dirname "$dir")")"
    sed -n 's/^go \([0-9.]*\).*/go \1/p' "$first_mod"
    awk '/^godebug[ \t]*\(/ {b=1; next} b && /^\)/ {b=0; next}
         b {print "godebug " $1; next} /^godebug[ \t]/ {print}' "$first_mod"
  } >"$dir/go.mod"
  local mod rep
  for mod in "$@"; do
    (cd "$dir" && go mod edit -require="$mod@$version")
    while IFS= read -r rep; do
      (cd "$dir" && go mod edit -replace="$rep")
    done < <(upstream_replaces "$(module_file "$mod" "$version" GoMod)" "$sibling")
  done
  printf '# %s\n' "$dir/go.mod"
  cat "$dir/go.mod"
}

# ---------------------------------------------------------------------------
# Recipes. Each builds one component: $1 version, $2 output directory that
# must hold the binaries when it returns. They run in a subshell with output
# going to the component's log.

build_kubernetes() {
  local version=$1 out=$2
  local minor=${version#v1.}; minor=${minor%%.*}
  # The staging modules (k8s.io/api, client-go, ...) are published as v0.Y.Z
  # for Kubernetes v1.Y.Z.
  local staging=v0.${version#v1.}
  local dir="$WORK_ROOT/kubernetes/$version"
  wrapper_module "$dir" "$staging" "$version" k8s.io/kubernetes
  local date commit
  date="$(release_date k8s.io/kubernetes "$version")"
  commit="$(origin_commit k8s.io/kubernetes "$version")"
  # The same variables as Kubernetes' hack/lib/version.sh, set in both the
  # component-base (servers, kubelet, kubeadm) and client-go (kubectl's
  # client side) version packages.
  local ldflags="-s -w" pkg var
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for var in "gitVersion=$version" gitMajor=1 "gitMinor=$minor" \
      gitTreeState=clean "buildDate=$date" ${commit:+"gitCommit=$commit"}; do
      ldflags+=" -X $pkg.$var"
    done
  done
  cd "$dir"
  # One invocation, so the packages the commands share compile once.
  run go build -trimpath -ldflags "$ldflags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kube-proxy \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubeadm
}

build_etcd() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/etcd/$version"
  # etcd's commands are three modules of one repository, released together.
  wrapper_module "$dir" "$version" "$version" \
    go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3
  local ldflags="-s -w" commit
  commit="$(origin_commit go.etcd.io/etcd/server/v3 "$version")"
  if [ -n "$commit" ]; then
    ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=${commit:0:9}"
  fi
  cd "$dir"
  run go build -trimpath -ldflags "$ldflags" -o "$out/" \
    go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3
  # The server's main package is the module go.etcd.io/etcd/server/v3.
  mv "$out/server" "$out/etcd"
}

build_coredns() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/coredns/$version"
  wrapper_module "$dir" "$version" "$version" github.com/coredns/coredns
  local commit
  commit="$(origin_commit github.com/coredns/coredns "$version")"
  cd "$dir"
  run go build -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${commit:0:7}" \
    -o "$out/coredns" github.com/coredns/coredns
}

build_pause() {
  local version=$1 out=$2
  # kforge's own pause (scripts/artifacts/pause), a Go program that needs
  # nothing but the Go toolchain; no dependencies, so no go.sum.
  cd "$HELPERS_DIR/pause"
  GOFLAGS=-buildvcs=false run go build -trimpath \
    -ldflags "-s -w -X main.version=$version" -o "$out/pause" .
}

build_kube_router() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/kube-router/$version"
  wrapper_module "$dir" "$version" "$version" github.com/cloudnativelabs/kube-router/v2
  local date
  date="$(release_date github.com/cloudnativelabs/kube-router/v2 "$version")"
  cd "$dir"
  run go build -trimpath \
    -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$version -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=$date" \
    -o "$out/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
}

build_cni_plugins() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/cni-plugins/$version"
  wrapper_module "$dir" "$version" "$version" github.com/containernetworking/plugins
  cd "$dir"
  # What containerd and kube-router's pod network use: bridge with
  # host-local IPAM, loopback, and portmap for hostPort.
  local p=github.com/containernetworking/plugins
  run go build -trimpath \
    -ldflags "-s -w -X $p/pkg/utils/buildversion.BuildVersion=$version" -o "$out/" \
    $p/plugins/main/bridge $p/plugins/ipam/host-local $p/plugins/main/loopback $p/plugins/meta/portmap
}

build_containerd() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/containerd/$version"
  local m=github.com/containerd/containerd/v2
  wrapper_module "$dir" "$version" "$version" "$m"
  local commit
  commit="$(origin_commit "$m" "$version")"
  local ldflags="-s -w -X $m/version.Version=$version -X $m/version.Package=github.com/containerd/containerd/v2"
  [ -z "$commit" ] || ldflags+=" -X $m/version.Revision=$commit"
  cd "$dir"
  # Static and without cgo, as upstream's release builds (the btrfs
  # snapshotter, which needs cgo, is left out); the shim without gRPC, as
  # upstream's Makefile builds it.
  run go build -trimpath -tags "urfave_cli_no_docs osusergo netgo" -ldflags "$ldflags" -o "$out/" \
    "$m/cmd/containerd" "$m/cmd/ctr"
  run go build -trimpath -tags "urfave_cli_no_docs osusergo netgo no_grpc" -ldflags "$ldflags" -o "$out/" \
    "$m/cmd/containerd-shim-runc-v2"
}

build_runc() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/runc/$version"
  wrapper_module "$dir" "$version" "$version" github.com/opencontainers/runc
  local commit
  commit="$(origin_commit github.com/opencontainers/runc "$version")"
  cd "$dir"
  # runc's nsenter is C and its seccomp support links libseccomp, so cgo is
  # on; linked statically like upstream's `make static`, so a host needs no
  # libseccomp of its own.
  CGO_ENABLED=1 run go build -trimpath -buildmode=pie \
    -tags "seccomp urfave_cli_no_docs netgo osusergo" \
    -ldflags "-s -w -X main.version=${version#v} ${commit:+-X main.gitCommit=$commit} -linkmode external -extldflags -static-pie" \
    -o "$out/runc" github.com/opencontainers/runc
}

build_crictl() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/crictl/$version"
  wrapper_module "$dir" "$version" "$version" sigs.k8s.io/cri-tools
  cd "$dir"
  run go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$version" \
    -o "$out/crictl" sigs.k8s.io/cri-tools/cmd/crictl
}

# ---------------------------------------------------------------------------
build_metrics_server() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/metrics-server/$version"
  wrapper_module "$dir" "$version" "$version" sigs.k8s.io/metrics-server
  cd "$dir"
  run go build -trimpath -ldflags "-s -w" -o "$out/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server
}

build_local_path_provisioner() {
  local version=$1 out=$2
  local dir="$WORK_ROOT/local-path-provisioner/$version"
  wrapper_module "$dir" "$version" "$version" github.com/rancher/local-path-provisioner
  cd "$dir"
  run go build -trimpath -ldflags "-s -w -X main.VERSION=$version" -o "$out/local-path-provisioner" github.com/rancher/local-path-provisioner
}

# use_version sets the per-version pins from the table row of Kubernetes $1.
use_version() {
  local r
  r="$(row "$1")"
  read -r KUBERNETES_VERSION ETCD_VERSION COREDNS_VERSION PAUSE_VERSION <<<"$r"
}

# component_spec prints "version recipe binaries..." for a component.
component_spec() {
  case $1 in
    kubernetes) echo "$KUBERNETES_VERSION build_kubernetes kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl kubeadm" ;;
    etcd) echo "$ETCD_VERSION build_etcd etcd etcdctl etcdutl" ;;
    coredns) echo "$COREDNS_VERSION build_coredns coredns" ;;
    pause) echo "$PAUSE_VERSION build_pause pause" ;;
    kube-router) echo "$KUBE_ROUTER_VERSION build_kube_router kube-router" ;;
    cni-plugins) echo "$CNI_PLUGINS_VERSION build_cni_plugins bridge host-local loopback portmap" ;;
    containerd) echo "$CONTAINERD_VERSION build_containerd containerd containerd-shim-runc-v2 ctr" ;;
    runc) echo "$RUNC_VERSION build_runc runc" ;;
    crictl) echo "$CRICTL_VERSION build_crictl crictl" ;;
    metrics-server) echo "$METRICS_SERVER_VERSION build_metrics_server metrics-server" ;;
    local-path-provisioner) echo "$LOCAL_PATH_PROVISIONER_VERSION build_local_path_provisioner local-path-provisioner" ;;
    *) die "unknown component $1 (known: ${ALL_COMPONENTS[*]})" ;;
  esac
}

# recipe_hash hashes what decides a component's output: its recipe, the
# shared helpers, its helper files under scripts/artifacts/<component>, and
# the Go toolchain. Editing one recipe rebuilds only that component.
recipe_hash() {
  local recipe=$1 component=$2
  {
    declare -f run module_file release_date origin_commit upstream_replaces wrapper_module "$recipe"
    printf 'GOFLAGS=%s CGO_ENABLED=%s\n' "$GOFLAGS" "$CGO_ENABLED"
    go version
    if [ -d "$HELPERS_DIR/$component" ]; then
      (cd "$HELPERS_DIR/$component" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    fi
  } | sha256sum | cut -d' ' -f1
}

# build_component builds one component unless the cache already has it.
build_component() {
  local component=$1 version recipe rest
  local -a binaries
  read -r version recipe rest <<<"$(component_spec "$component")"
  read -r -a binaries <<<"$rest"
  local dest="$BIN_ROOT/$component/$version"
  local stamp
  stamp="$(printf 'component=%s\nversion=%s\nrecipe=%s\nbinaries=%s\n' \
    "$component" "$version" "$(recipe_hash "$recipe" "$component")" "${binaries[*]}")"
  local start=$SECONDS b ok=1
  for b in "${binaries[@]}"; do
    [ -x "$dest/$b" ] || ok=0
  done
  if [ "$ok" = 1 ] && [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ]; then
    printf '%-12s %-8s cached (%ds)\n' "$component" "$version" $((SECONDS - start))
    return 0
  fi

  mkdir -p "$BIN_ROOT/$component" "$LOG_ROOT"
  local tmp logfile="$LOG_ROOT/$component-$version.log"
  tmp="$(mktemp -d "$BIN_ROOT/$component/.tmp-$version.XXXXXX")"
  printf '%-12s %-8s building (log: %s)\n' "$component" "$version" "$logfile" >&2
  if ! ( set -euo pipefail; "$recipe" "$version" "$tmp" ) >"$logfile" 2>&1; then
    rm -rf "$tmp"
    tail -n 40 "$logfile" >&2
    die "$component $version: build failed after $((SECONDS - start))s; full log: $logfile"
  fi
  for b in "${binaries[@]}"; do
    if [ ! -x "$tmp/$b" ]; then
      rm -rf "$tmp"
      die "$component $version: the build did not produce $b; log: $logfile"
    fi
  done
  printf '%s\n' "$stamp" >"$tmp/.stamp"
  chmod 0755 "$tmp"
  if [ -e "$dest" ]; then
    rm -rf "$dest.old"
    mv "$dest" "$dest.old"
  fi
  mv "$tmp" "$dest"
  rm -rf "$dest.old"
  printf '%-12s %-8s built in %ds\n' "$component" "$version" $((SECONDS - start))
}

# plan prints "kubernetes-version component" for every build to do: the
# requested components for the first version, and the per-version ones again
# for each further version.
plan() {
  local first=1 v c
  for v in "${versions[@]}"; do
    for c in "${components[@]}"; do
      if [ "$first" = 1 ] || [[ "$PER_VERSION_COMPONENTS" == *" $c "* ]]; then
        echo "$v $c"
      fi
    done
    first=0
  done
}

main() {
  local list=0
  if [ "${1:-}" = "--default-version" ]; then
    echo "$DEFAULT_KUBERNETES_VERSION"
    return 0
  fi
  if [ "${1:-}" = "--supported-versions" ]; then
    printf '%s\n' "$VERSION_TABLE" | awk 'NF {printf "%s%s", sep, $1; sep = " "} END {print ""}'
    return 0
  fi
  if [ "${1:-}" = "--list" ]; then
    list=1
    shift
  fi
  components=("$@")
  [ ${#components[@]} -gt 0 ] || components=("${ALL_COMPONENTS[@]}")
  read -r -a versions <<<"${KUBERNETES_VERSIONS:-$DEFAULT_KUBERNETES_VERSION}"
  [ ${#versions[@]} -gt 0 ] || versions=("$DEFAULT_KUBERNETES_VERSION")
  local c v
  for v in "${versions[@]}"; do
    row "$v" >/dev/null
  done
  use_version "${versions[0]}"
  for c in "${components[@]}"; do
    component_spec "$c" >/dev/null
  done
  local -a steps
  mapfile -t steps < <(plan)
  local step

  if [ "$list" = 1 ]; then
    local missing=0 b version spec
    for step in "${steps[@]}"; do
      read -r v c <<<"$step"
      use_version "$v"
      spec="$(component_spec "$c")"
      version=${spec%% *}
      for b in $(echo "$spec" | cut -d' ' -f3-); do
        echo "$BIN_ROOT/$c/$version/$b"
        [ -x "$BIN_ROOT/$c/$version/$b" ] || missing=1
      done
    done
    return "$missing"
  fi

  command -v go >/dev/null || die "go is not on PATH"
  mkdir -p "$CACHE"
  # One build at a time per cache, also across concurrent invocations.
  exec 9>"$CACHE/.build.lock"
  if ! flock -n 9; then
    log "build-artifacts: waiting for another build using $CACHE"
    flock 9
  fi
  # Module downloads run from the cache directory; they must not see a
  # go.mod above it (for instance the kforge repository's).
  cd "$CACHE"
  local gomod
  gomod="$(GOFLAGS= go env GOMOD)"
  if [ -n "$gomod" ] && [ "$gomod" != /dev/null ]; then
    die "KFORGE_CACHE ($CACHE) is inside the Go module $gomod; put it elsewhere"
  fi

  local total=$SECONDS
  for step in "${steps[@]}"; do
    read -r v c <<<"$step"
    use_version "$v"
    build_component "$c"
  done
  printf '%-12s %-8s %ds\n' total "" $((SECONDS - total))
}

main "$@"
