#!/usr/bin/env bash
# make machines: starts N machine containers and prints, as its last line,
# the path of a cluster file for them.
#
#   N                  how many machines (default 3)
#   MACHINE_SYSTEMD    which machines boot systemd as PID 1: numbers separated
#                      by spaces or commas ("2", "2 3"), "all" or "none".
#                      Default: machine 2 when N >= 2, so a cluster of the
#                      machines always has a systemd host and a host without.
#   MACHINE_SSH_USER   the SSH user in the cluster file: root or kforge (sudo
#                      without a password). Default: root for machine 1 (the
#                      control plane), kforge for the others, so one cluster
#                      exercises both.
#   and those of lib.sh (MACHINES_PREFIX, MACHINES_SUBNET, ...).
#
# It converges: machines that are running as asked are left alone (a second
# run takes seconds), stopped ones are started, ones from another image or
# with another init are replaced, machines numbered above N are removed.
#
# Machine i is a container named and hostnamed <prefix>-m<i> at .(10+i) of
# the network's /24, with both SSH users authorized for
# $KFORGE_CACHE/machines/ssh/id_ed25519. Its host keys go to
# $STATE/known_hosts only after the key sshd presents matches the one inside
# the container. Every wait has a time limit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${N:-3}"
# CONTROL_PLANES: machines 1 to CONTROL_PLANES are control planes in the
# cluster file (default 1).
if ! [[ "${CONTROL_PLANES:-1}" =~ ^[1-9][0-9]*$ ]] || [ "${CONTROL_PLANES:-1}" -gt "$N" ]; then
  die "CONTROL_PLANES=$CONTROL_PLANES: give a number of control planes from 1 to N=$N"
fi
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]] || [ "$N" -gt 200 ]; then
  die "N=$N: give a number of machines from 1 to 200"
fi

# systemd_set prints, one per line, the numbers of the machines that boot
# systemd.
systemd_set() {
  local spec="${MACHINE_SYSTEMD-default}" i
  case "$spec" in
    default) [ "$N" -ge 2 ] && echo 2 ;;
    none | "") ;;
    all) seq 1 "$N" ;;
    *)
      for i in ${spec//,/ }; do
        if ! [[ "$i" =~ ^[0-9]+$ ]] || [ "$i" -lt 1 ] || [ "$i" -gt "$N" ]; then
          die "MACHINE_SYSTEMD=$spec: $i is not a machine number from 1 to $N"
        fi
        echo "$i"
      done
      ;;
  esac
  return 0
}

machine_init() { grep -qx "$1" <<<"$SYSTEMD_SET" && echo systemd || echo sshd; }

ssh_user() {
  case "${MACHINE_SSH_USER:-}" in
    "") [ "$1" -eq 1 ] && echo root || echo kforge ;;
    root | kforge) echo "$MACHINE_SSH_USER" ;;
    *) die "MACHINE_SSH_USER=$MACHINE_SSH_USER: use root or kforge" ;;
  esac
}

label() { d inspect -f "{{index .Config.Labels \"$LABEL.$2\"}}" "$1" 2>/dev/null; }

ensure_key() {
  [ -f "$KEY" ] && [ -f "$KEY.pub" ] && return 0
  mkdir -p "$(dirname "$KEY")"
  rm -f "$KEY" "$KEY.pub"
  ssh-keygen -q -t ed25519 -N '' -C "kforge-machines" -f "$KEY"
  chmod 0600 "$KEY"
}

# ensure_network makes the machines' network: a bridge with no route out
# (--internal), so the machines are air-gapped hosts. This host still reaches
# them: what it sends from its own address on the bridge (.1) is not
# forwarded, so docker's isolation does not apply; for the same reason the
# machines reach services listening on this host itself. They reach each other
# (see ensure_forwarding). A network of kforge's with another subnet, or with
# a route out (made before the machines were air-gapped), is replaced with its
# machines.
ensure_network() {
  local have want="$SUBNET internal=true"
  if have=$(d network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}} internal={{.Internal}}' "$NETWORK" 2>/dev/null); then
    [ "$have" = "$want" ] && return 0
    [ -n "$(d network inspect -f "{{index .Labels \"$LABEL.prefix\"}}" "$NETWORK")" ] ||
      die "a docker network $NETWORK that kforge did not make exists; remove it or set MACHINES_PREFIX"
    log "network $NETWORK is '$have', not '$want': replacing it and its machines"
    remove_machines 0
    remove_forward_rules
    d network rm "$NETWORK" >/dev/null
  fi
  d network create --internal --driver bridge --subnet "$SUBNET" --gateway "$(net_base).1" \
    --label "$LABEL.prefix=$PREFIX" "$NETWORK" >/dev/null ||
    die "cannot create network $NETWORK ($SUBNET); if it overlaps another network, set MACHINES_SUBNET"
}

# ensure_forwarding lets traffic between machines through whatever their
# addresses. docker isolates an internal network with rules that match by
# address (DOCKER-ISOLATION-STAGE-1: drop what enters the bridge from outside
# the subnet or leaves it for outside the subnet), and on these hosts frames
# bridged between two machines go through iptables too
# (net.bridge.bridge-nf-call-iptables=1). So pod traffic routed from node to
# node, whose addresses are pod IPs, would be dropped (seen: a TCP connect
# from one machine to an address routed via another timed out). One rule at
# the top of DOCKER-USER, which docker consults first and leaves alone,
# accepts what enters and leaves the machines' bridge: traffic between
# machines. What leaves the bridge for anywhere else is still dropped.
ensure_forwarding() {
  local br spec
  br=$(network_bridge) || die "cannot inspect network $NETWORK"
  spec=(-i "$br" -o "$br" -m comment --comment "$FORWARD_COMMENT" -j ACCEPT)
  if ! iptables -w 10 -S DOCKER-USER >/dev/null 2>&1; then
    log "warning: no iptables chain DOCKER-USER (does dockerd run with --iptables=false?): traffic between machines is not opened, nor is the network isolated"
    return 0
  fi
  if iptables -w 10 -C DOCKER-USER "${spec[@]}" 2>/dev/null && [ "$(forward_rules | wc -l)" -eq 1 ]; then
    return 0
  fi
  remove_forward_rules
  iptables -w 10 -I DOCKER-USER "${spec[@]}" ||
    die "cannot add the iptables rule that lets the machines reach each other (iptables -I DOCKER-USER ${spec[*]})"
}

# remove_machines K removes this prefix's machines numbered above K, with
# their anonymous volumes.
remove_machines() {
  local name idx
  for name in $(d ps -a --filter "label=$LABEL.prefix=$PREFIX" --format '{{.Names}}'); do
    idx=$(label "$name" index)
    if [ "${idx:-0}" -gt "$1" ]; then
      log "removing $name"
      d rm -f -v "$name" >/dev/null
    fi
  done
}

# run_machine I: creates and starts machine I with the flags that work on
# these hosts (ENVIRONMENT.md): everything --privileged gives except
# CAP_SYS_RESOURCE, which the hosts' root lacks; the host's cgroup
# hierarchies; /run and /tmp as tmpfs; /var/lib/containerd on a volume so the
# overlayfs snapshots of the containerd that kforge installs do not sit on
# overlayfs.
run_machine() {
  local i=$1 name ip init
  name=$(machine_name "$i") ip=$(machine_ip "$i") init=$(machine_init "$i")
  # shellcheck disable=SC2054 # the commas are tmpfs mount options
  local args=(
    --detach --name "$name" --hostname "$name"
    --network "$NETWORK" --ip "$ip"
    --label "$LABEL.prefix=$PREFIX" --label "$LABEL.index=$i"
    --label "$LABEL.image=$IMAGE" --label "$LABEL.init=$init" --label "$LABEL.ip=$ip"
    --cap-add=ALL --cap-drop=SYS_RESOURCE
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined
    --security-opt systempaths=unconfined
    --device-cgroup-rule='a *:* rwm'
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw
    --tmpfs /run:rw,exec,nosuid,nodev,mode=755 --tmpfs /tmp:rw,exec,nosuid,nodev,mode=1777
    -v /var/lib/containerd
  )
  if [ "$init" = systemd ]; then
    # shellcheck disable=SC2054
    args+=(--tmpfs /run/lock:rw,noexec,nosuid,nodev -e container=docker --stop-signal SIGRTMIN+3)
  fi
  log "starting $name ($ip, $init)"
  d run "${args[@]}" "$IMAGE" /usr/local/sbin/kforge-machine-entrypoint "$init" >/dev/null
}

# ensure_machine I: converges machine I to running from IMAGE with its init.
ensure_machine() {
  local i=$1 name state
  name=$(machine_name "$i")
  if state=$(d inspect -f '{{.State.Running}}' "$name" 2>/dev/null); then
    if [ "$(label "$name" prefix)" != "$PREFIX" ]; then
      die "a container $name that kforge did not make exists; remove it or set MACHINES_PREFIX"
    fi
    if [ "$(label "$name" image)" != "$IMAGE" ] || [ "$(label "$name" init)" != "$(machine_init "$i")" ] ||
      [ "$(label "$name" ip)" != "$(machine_ip "$i")" ]; then
      log "replacing $name (other image, init or address)"
      d rm -f -v "$name" >/dev/null
    elif [ "$state" = true ]; then
      return 0
    else
      log "starting stopped $name"
      d start "$name" >/dev/null
      return 0
    fi
  fi
  run_machine "$i"
}

# authorize I: lets the key in as root and as kforge.
authorize() {
  # shellcheck disable=SC2016 # expanded by the machine's shell
  d exec "$(machine_name "$1")" sh -c '
    set -e
    for u in root kforge; do
      home=$(getent passwd "$u" | cut -d: -f6)
      install -d -m 700 -o "$u" -g "$u" "$home/.ssh"
      printf "%s\n" "$1" >"$home/.ssh/authorized_keys"
      chown "$u:$u" "$home/.ssh/authorized_keys"
      chmod 600 "$home/.ssh/authorized_keys"
    done' sh "$(cat "$KEY.pub")"
}

scan() { ssh-keyscan -T 3 "$1" 2>/dev/null | grep -v '^#'; }
scan_has_keys() { [ -n "$(scan "$1")" ]; }

# host_keys I: prints machine I's known_hosts lines, after checking that the
# ed25519 key sshd presents is the one in the container.
host_keys() {
  local name ip keys inside
  name=$(machine_name "$1") ip=$(machine_ip "$1")
  wait_until 60 "sshd on $name ($ip)" scan_has_keys "$ip" || die "sshd on $name does not answer; see: docker logs $name"
  keys=$(scan "$ip" | sort)
  inside=$(d exec "$name" cat /etc/ssh/ssh_host_ed25519_key.pub | awk '{print $2}')
  grep -q " ssh-ed25519 $inside\$" <<<"$keys" ||
    die "the ed25519 key at $ip is not $name's own; is another host using $ip?"
  printf '%s\n' "$keys"
}

# wait_systemd I: waits until systemd on machine I has finished booting.
wait_systemd() {
  local name state
  name=$(machine_name "$1")
  state=$(timeout 120 "$DOCKER" exec "$name" systemctl is-system-running --wait 2>/dev/null) || true
  if [ "$state" != running ]; then
    d exec "$name" systemctl --failed --no-legend >&2 || true
    die "systemd on $name is '${state:-not answering after 120s}', not running"
  fi
}

ssh_ok() {
  timeout 20 ssh -F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$STATE/known_hosts" \
    -o ConnectTimeout=5 "$@"
}

write_cluster_file() {
  local f="$STATE/kforge.yaml" i systemd_names=""
  for i in $SYSTEMD_SET; do systemd_names+=" $(machine_name "$i")"; done
  {
    cat <<HEAD
# Cluster of $N machine containers made by \`make machines\` (kforge's
# scripts/machines) on the docker network $NETWORK ($SUBNET).
# Booting systemd:${systemd_names:- none}. Remove them with \`make machines-down\`.
apiVersion: kforge.dev/v1alpha1
kind: Cluster
name: $PREFIX-machines
hosts:
HEAD
    for i in $(seq 1 "$N"); do
      cat <<HOST
  - address: $(machine_ip "$i")
    name: $(machine_name "$i")
    role: $([ "$i" -le "${CONTROL_PLANES:-1}" ] && echo control-plane || echo worker)
    ssh:
      user: $(ssh_user "$i")
      keyPath: $KEY
      knownHosts: $STATE/known_hosts
HOST
    done
  } >"$f.tmp"
  mv "$f.tmp" "$f"
  echo "$f"
}

write_ssh_config() {
  local i
  for i in $(seq 1 "$N"); do
    cat <<HOST
Host $(machine_name "$i")
  HostName $(machine_ip "$i")
  User $(ssh_user "$i")
  IdentityFile $KEY
  IdentitiesOnly yes
  UserKnownHostsFile $STATE/known_hosts
  StrictHostKeyChecking yes
HOST
  done >"$STATE/ssh_config"
}

main() {
  local start=$SECONDS i
  SYSTEMD_SET=$(systemd_set)
  ssh_user 1 >/dev/null
  for i in ssh ssh-keygen ssh-keyscan; do command -v "$i" >/dev/null || apt_install openssh-client; done
  bash "$SCRIPT_DIR/docker.sh"
  mkdir -p "$MACHINES_DIR"
  exec 9>"$MACHINES_DIR/.lock-$PREFIX"
  flock -w 1800 9 || die "another make machines/machines-down for $PREFIX holds $MACHINES_DIR/.lock-$PREFIX"

  IMAGE=$(bash "$SCRIPT_DIR/image.sh")
  ensure_key
  ensure_network
  ensure_forwarding
  remove_machines "$N"
  for i in $(seq 1 "$N"); do ensure_machine "$i"; done

  mkdir -p "$STATE"
  : >"$STATE/known_hosts.tmp"
  for i in $(seq 1 "$N"); do
    authorize "$i"
    host_keys "$i" >>"$STATE/known_hosts.tmp"
  done
  mv "$STATE/known_hosts.tmp" "$STATE/known_hosts"
  for i in $SYSTEMD_SET; do wait_systemd "$i"; done
  for i in $(seq 1 "$N"); do
    wait_until 30 "root login on $(machine_name "$i")" ssh_ok "root@$(machine_ip "$i")" true ||
      die "cannot log in to $(machine_name "$i") as root"
    wait_until 30 "kforge login and sudo on $(machine_name "$i")" ssh_ok "kforge@$(machine_ip "$i")" sudo -n true ||
      die "cannot log in to $(machine_name "$i") as kforge with sudo"
  done
  write_ssh_config
  for i in $(seq 1 "$N"); do
    log "$(printf '%-14s %-15s %-8s %s' "$(machine_name "$i")" "$(machine_ip "$i")" "$(machine_init "$i")" "$(ssh_user "$i")")"
  done
  log "$N machine(s) ready in $((SECONDS - start))s; ssh -F $STATE/ssh_config $(machine_name 1)"
  write_cluster_file
}

main "$@"
