# shellcheck shell=bash disable=SC2034 # settings used by the scripts that source this
# Settings and helpers shared by the machine scripts (sourced, not run).
#
# The machines are containers that look like hosts to kforge: their own
# address and hostname on a private network, sshd, root and a sudo user, and
# (for some) systemd as PID 1. Everything they are made of lives in kforge's
# cache; everything about the running set lives in a state directory that
# `make machines-down` removes:
#
#   ${KFORGE_CACHE:-$HOME/.cache/kforge}/machines/
#     <key>/rootfs.tar          the node image's root file system (debootstrap)
#     <key>/debootstrap.log     how it was built
#     ssh/id_ed25519[.pub]      the key every machine accepts, for root and kforge
#     state/<prefix>/           the running set: known_hosts, kforge.yaml, logs
#
# Variables (all optional):
#   MACHINES_PREFIX  names: containers <prefix>-m1.., network <prefix>-machines
#                    (default kforge); lets a test run its own set beside yours
#   MACHINES_SUBNET  the network's /24 (default 172.30.0.0/24); machine i
#                    gets .(10+i), so kforge-m1 is 172.30.0.11
#   MACHINES_MIRROR  the Debian mirror debootstrap uses
#   DOCKER           the docker client (default: /usr/bin/docker, else PATH)

CACHE="${KFORGE_CACHE:-$HOME/.cache/kforge}"
MACHINES_DIR="$CACHE/machines"
PREFIX="${MACHINES_PREFIX:-kforge}"
NETWORK="$PREFIX-machines"
SUBNET="${MACHINES_SUBNET:-172.30.0.0/24}"
STATE="$MACHINES_DIR/state/$PREFIX"
KEY="$MACHINES_DIR/ssh/id_ed25519"
MIRROR="${MACHINES_MIRROR:-http://deb.debian.org/debian}"
IMAGE_REPO="kforge-machine"
# Labels on every container and network the scripts make; machines-down and
# the reconcile in up.sh find their objects by these, never by name alone.
LABEL="dev.kforge.machines"
# The comment on the one iptables rule the scripts add (see ensure_forwarding
# in up.sh); machines-down removes the rules that carry it.
FORWARD_COMMENT="kforge-machines:$PREFIX"

if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'machines: %s\n' "$*" >&2; }
die() { printf 'machines: error: %s\n' "$*" >&2; exit 1; }

# d runs the docker client with a time limit: no docker call may hang the
# target.
d() { timeout "${DOCKER_TIMEOUT:-300}" "$DOCKER" "$@"; }

# wait_until SECONDS WHAT CMD...: runs CMD every half second until it
# succeeds; after SECONDS it fails naming WHAT.
wait_until() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "gave up after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# net_base prints the first three octets of the /24 SUBNET ("172.30.0").
net_base() {
  [[ "$SUBNET" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] ||
    die "MACHINES_SUBNET=$SUBNET: give a /24 such as 172.30.0.0/24"
  printf '%s\n' "${BASH_REMATCH[1]}"
}

# network_bridge prints the Linux bridge of the docker network NETWORK.
network_bridge() {
  local name id
  name=$(d network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$NETWORK") || return 1
  if [ -z "$name" ]; then
    id=$(d network inspect -f '{{.Id}}' "$NETWORK") || return 1
    name="br-${id:0:12}"
  fi
  printf '%s\n' "$name"
}

# forward_rules prints this prefix's rules in docker's DOCKER-USER chain, as
# `iptables -S` lines without quotes (iptables quotes the comment, which has
# no spaces).
forward_rules() {
  iptables -w 10 -S DOCKER-USER 2>/dev/null | tr -d '"' | grep -F -- "--comment $FORWARD_COMMENT " || true
}

# remove_forward_rules deletes this prefix's rules from DOCKER-USER.
remove_forward_rules() {
  local line rule
  while read -r line; do
    [ -n "$line" ] || continue
    read -ra rule <<<"$line"
    rule[0]=-D
    iptables -w 10 "${rule[@]}" || log "warning: cannot delete the rule: iptables $line"
  done < <(forward_rules)
}

machine_name() { printf '%s-m%d\n' "$PREFIX" "$1"; }
machine_ip() { printf '%s.%d\n' "$(net_base)" $((10 + $1)); }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (run it with sudo)"
}

# apt_install PACKAGE...: installs the Debian packages that are missing.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
