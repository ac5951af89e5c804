#!/usr/bin/env bash
# Builds kube-bench from its Go module source, pinned by version (the module
# proxy lists no versions of it, so the version is named exactly), into
# $KFORGE_CACHE/tools/kube-bench/<version>/ with its cfg/ directory beside the
# binary. A cached build is reused. Prints the binary's path last.
set -euo pipefail
KUBE_BENCH_VERSION=${KUBE_BENCH_VERSION:-v0.15.6}
KFORGE_CACHE=${KFORGE_CACHE:-$HOME/.cache/kforge}
GO=${GO:-go}
out="$KFORGE_CACHE/tools/kube-bench/$KUBE_BENCH_VERSION"
if [ -x "$out/kube-bench" ] && [ -d "$out/cfg" ]; then
  echo "$out/kube-bench"
  exit 0
fi
src=$(GOFLAGS=-mod=mod "$GO" mod download -json "github.com/aquasecurity/kube-bench@$KUBE_BENCH_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "build-kube-bench: module github.com/aquasecurity/kube-bench@$KUBE_BENCH_VERSION not downloaded" >&2; exit 1; }
tmp="$out.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
(cd "$src" && CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" "$GO" build -trimpath -ldflags "-s -w" -o "$tmp/kube-bench" .)
cp -r "$src/cfg" "$tmp/cfg" && chmod -R u+w "$tmp/cfg"
rm -rf "$out" && mv "$tmp" "$out"
trap - EXIT
echo "kube-bench   $KUBE_BENCH_VERSION built" >&2
echo "$out/kube-bench"
