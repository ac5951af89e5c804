#!/usr/bin/env bash
# Builds the machine image and imports it into docker; prints its tag.
#
# The root file system is Debian bookworm made by debootstrap (minbase plus
# PACKAGES) and then prepared by rootfs.sh: no SSH host keys and an empty
# machine-id (each machine makes its own on first start), the sudo user
# kforge, and the entrypoint. It is cached as a tar under
# $KFORGE_CACHE/machines/<key>/, where <key> hashes the suite, the mirror, the
# package list and the scripts that make it, so a changed recipe builds a new
# one and an unchanged one is only imported (seconds) into a docker that
# lacks it. The image is tagged kforge-machine:<key>.
#
# One image serves both kinds of machine; the command it is run with decides:
#   kforge-machine-entrypoint sshd     PID 1 is tini, sshd runs in the
#                                      foreground; systemd is installed but
#                                      not running, like on hosts without it
#   kforge-machine-entrypoint systemd  PID 1 is systemd (/sbin/init), which
#                                      starts ssh as a unit
#
# The image has no container runtime: no containerd, runc, crun or CNI
# plugins, as on a fresh host. kforge brings them in its bundle; the machines
# cannot fetch them, as their network has no route out (up.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUITE=bookworm
PACKAGES=(
  openssh-server sudo ca-certificates
  curl                      # what a worker fetches kforge from its control plane with
  iproute2 iptables conntrack procps
  systemd systemd-sysv dbus # the systemd machines' init
  tini                      # the plain machines' init: reaps orphans
)

# The key covers everything that shapes the tar, so editing any of it
# rebuilds.
image_key() {
  {
    echo "kforge machine image 1"
    echo "suite=$SUITE mirror=$MIRROR"
    printf '%s\n' "${PACKAGES[@]}" | sort
    cat "$SCRIPT_DIR/rootfs.sh" "$SCRIPT_DIR/entrypoint.sh"
  } | sha256sum | cut -c1-16
}

# build_rootfs DIR: debootstrap into DIR/.build, prepare it, tar it to
# DIR/rootfs.tar. The tar appears complete or not at all.
build_rootfs() {
  local dir=$1 work root
  need_root "building the machine image (debootstrap)"
  apt_install debootstrap
  mkdir -p "$dir"
  work=$(mktemp -d "$dir/.build-XXXXXX")
  # shellcheck disable=SC2064 # expand now: work is local
  trap "rm -rf '$work'" EXIT
  root="$work/rootfs"
  log "building the machine image with debootstrap ($SUITE, ${#PACKAGES[@]} packages; log: $dir/debootstrap.log)"
  local pkgs
  pkgs=$(IFS=,; echo "${PACKAGES[*]}")
  if ! timeout 1200 nice -n 10 debootstrap --variant=minbase --arch=amd64 \
    --include="$pkgs" "$SUITE" "$root" "$MIRROR" >"$dir/debootstrap.log" 2>&1; then
    tail -20 "$dir/debootstrap.log" >&2
    die "debootstrap failed; log: $dir/debootstrap.log"
  fi
  bash "$SCRIPT_DIR/rootfs.sh" "$root" "$SCRIPT_DIR/entrypoint.sh" "$MIRROR" >>"$dir/debootstrap.log" 2>&1 ||
    die "preparing the root file system failed; log: $dir/debootstrap.log"
  tar --numeric-owner --xattrs -C "$root" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' --exclude='./tmp/*' \
    -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$dir/rootfs.tar"
  rm -rf "$work"
  trap - EXIT
}

main() {
  local key dir tag
  key=$(image_key)
  dir="$MACHINES_DIR/$key"
  tag="$IMAGE_REPO:$key"
  if d image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    return 0
  fi
  # One build at a time per cache; a second caller waits and reuses it.
  mkdir -p "$MACHINES_DIR"
  exec 8>"$MACHINES_DIR/.image.lock"
  flock -w 1500 8 || die "another build holds $MACHINES_DIR/.image.lock"
  if [ ! -f "$dir/rootfs.tar" ]; then
    local start=$SECONDS
    build_rootfs "$dir"
    log "machine image root file system built in $((SECONDS - start))s: $dir/rootfs.tar"
  fi
  if ! d image inspect "$tag" >/dev/null 2>&1; then
    log "importing $dir/rootfs.tar as $tag"
    # No CMD: the command is given at docker run (see above).
    d import --message "kforge machine image $key" - "$tag" <"$dir/rootfs.tar" >/dev/null
  fi
  echo "$tag"
}

main "$@"
