#!/usr/bin/env bash
# make machines-down: removes the machine containers of MACHINES_PREFIX
# (default kforge) with their volumes, their network and its iptables rule,
# their kubelet cgroup roots and the state directory (known_hosts,
# kforge.yaml). The cached image, its root file system and the SSH key stay,
# so the next `make machines` is quick. docker itself is left running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# remove_cgroup_roots removes /kubelet-<prefix>-m<i> (made by the entrypoint
# and filled by a kubelet) from every cgroup hierarchy, deepest first. Only
# empty cgroups can go; the machines' processes died with their containers.
remove_cgroup_roots() {
  local dir
  for dir in /sys/fs/cgroup/*/kubelet-"$PREFIX"-m*; do
    if ! [ -d "$dir" ] || ! [[ "${dir##*/kubelet-"$PREFIX"-m}" =~ ^[0-9]+$ ]]; then
      continue
    fi
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ ! -d "$dir" ] || log "warning: could not remove $dir (processes still in it?)"
  done
}

main() {
  mkdir -p "$MACHINES_DIR"
  exec 9>"$MACHINES_DIR/.lock-$PREFIX"
  flock -w 600 9 || die "another make machines/machines-down for $PREFIX holds $MACHINES_DIR/.lock-$PREFIX"
  if timeout 20 "$DOCKER" info >/dev/null 2>&1; then
    local names
    names=$(d ps -a --filter "label=$LABEL.prefix=$PREFIX" --format '{{.Names}}')
    if [ -n "$names" ]; then
      log "removing ${names//$'\n'/ }"
      # shellcheck disable=SC2086 # one word per container
      d rm -f -v $names >/dev/null
    fi
    if [ -n "$(d network inspect -f "{{index .Labels \"$LABEL.prefix\"}}" "$NETWORK" 2>/dev/null)" ]; then
      log "removing network $NETWORK"
      d network rm "$NETWORK" >/dev/null
    fi
    remove_cgroup_roots
  else
    log "docker does not answer: no containers to remove"
  fi
  remove_forward_rules
  rm -rf "$STATE"
  log "removed $PREFIX machines and $STATE"
}

main "$@"
