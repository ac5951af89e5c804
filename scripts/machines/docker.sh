#!/usr/bin/env bash
# Makes sure a docker daemon answers, for the machine containers.
#
# A daemon that already answers (a distribution's docker.service, or one this
# script started earlier) is used as it is. Otherwise docker.io is installed
# from Debian if dockerd is missing, and dockerd is started in the
# background, because these hosts have no systemd to start it.
#
# dockerd 20.10 with no --containerd uses the system containerd whenever
# /run/containerd/containerd.sock exists, and only otherwise starts one of
# its own. That socket belongs to the containerd of kforge's single-node
# cluster on this host (kforge up --local), which kforge reset stops and
# whose configuration kforge rewrites. So docker gets a containerd of its own,
# with its own socket, state and root, and its CRI plugin off:
#
#   /run/kforge-docker/containerd.sock     docker's containerd (dockerd --containerd)
#   /run/kforge-docker/containerd/         its state
#   /var/lib/kforge-docker/containerd/     its content and snapshots
#   /var/log/kforge-docker/{containerd,dockerd}.log
#
# dockerd itself keeps its usual places (/var/run/docker.sock, /var/lib/docker,
# /run/docker), so `docker ps` works as usual. The two containerds share only
# /run/containerd/s, where each names its shims' sockets by a hash of its own
# address, and runc state is kept apart (docker's is /run/docker/runtime-runc,
# kforge's cluster uses the k8s.io namespace).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_DIR=/run/kforge-docker
LIB_DIR=/var/lib/kforge-docker
LOG_DIR=/var/log/kforge-docker
CTRD_SOCK="$RUN_DIR/containerd.sock"

docker_answers() { timeout 20 "$DOCKER" info >/dev/null 2>&1; }
containerd_answers() { timeout 10 ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; }

start_containerd() {
  mkdir -p "$RUN_DIR" "$LIB_DIR" "$LOG_DIR"
  cat >"$LIB_DIR/containerd.toml" <<TOML
# docker's own containerd, started by kforge's scripts/machines/docker.sh.
version = 2
root = "$LIB_DIR/containerd"
state = "$RUN_DIR/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
TOML
  log "starting docker's containerd at $CTRD_SOCK (log: $LOG_DIR/containerd.log)"
  # setsid: the daemon must outlive make and not get its terminal's signals.
  setsid containerd --config "$LIB_DIR/containerd.toml" \
    >>"$LOG_DIR/containerd.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN_DIR/containerd.pid"
  wait_until 30 "containerd at $CTRD_SOCK" containerd_answers ||
    die "containerd did not start; see $LOG_DIR/containerd.log"
}

start_dockerd() {
  # dockerd sets the FORWARD policy to DROP when it has to turn on IP
  # forwarding itself; that would cut the pod traffic of a kforge cluster
  # already on this host. Kubernetes needs forwarding on anyway.
  if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
    sysctl -qw net.ipv4.ip_forward=1
  fi
  log "starting dockerd (log: $LOG_DIR/dockerd.log)"
  setsid dockerd --containerd "$CTRD_SOCK" --pidfile "$RUN_DIR/dockerd.pid" \
    >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null 9>&- &
  wait_until 60 "dockerd" docker_answers ||
    die "dockerd did not answer within 60s; see $LOG_DIR/dockerd.log"
}

main() {
  if docker_answers; then
    return 0
  fi
  command -v dockerd >/dev/null || apt_install docker.io
  need_root "starting dockerd"
  # Starting the daemons is done by one process at a time.
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/start.lock"
  flock -w 120 9 || die "another process holds $RUN_DIR/start.lock"
  if docker_answers; then
    return 0
  fi
  local pid
  pid=$(cat "$RUN_DIR/dockerd.pid" 2>/dev/null || true)
  # A live dockerd, not a zombie its parent has not reaped.
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] &&
    [ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != Z ]; then
    # Ours, still starting or stuck: give it the time a start gets.
    wait_until 60 "dockerd (pid $pid)" docker_answers ||
      die "dockerd (pid $pid) does not answer; see $LOG_DIR/dockerd.log"
    return 0
  fi
  # A pid file left by a dockerd that died would stop the new one.
  rm -f "$RUN_DIR/dockerd.pid"
  containerd_answers || start_containerd
  start_dockerd
}

main "$@"
