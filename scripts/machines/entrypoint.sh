#!/bin/bash
# kforge-machine-entrypoint MODE: the first program of a machine container.
# It makes the container look like a booted host to kforge and the kubelet,
# then becomes (execs) the machine's init:
#   sshd     tini as PID 1 (it reaps orphans, as init does), running sshd in
#            the foreground, logging to the container's output
#   systemd  /sbin/init, which starts ssh and whatever kforge installs as
#            units (the image has no container runtime: kforge brings it)
# It runs again on every start of the container and changes only what is
# missing.
set -eu
mode=${1:-sshd}

# The kubelet reads kernel messages (OOM events) from /dev/kmsg, which
# docker does not create.
[ -e /dev/kmsg ] || mknod -m 600 /dev/kmsg c 1 11

# One machine-id per machine, kept across restarts: the kubelet reports it
# and journald names its files by it.
if [ ! -s /etc/machine-id ]; then
  tr -d '-' </proc/sys/kernel/random/uuid >/etc/machine-id
fi

# SSH host keys, made on the first start (the image has none).
ssh-keygen -A >/dev/null

# Mounts made under the kubelet's volumes must propagate (the kubelet and
# CSI drivers use rshared mounts); docker makes / private.
mount --make-rshared /

# Node containers share the host's cgroup v1 hierarchies, so each kubelet
# needs a cgroupRoot of its own, /kubelet-<hostname>, and the kubelet refuses
# one that is missing from any hierarchy.
for h in /sys/fs/cgroup/*/; do
  [ -L "${h%/}" ] || mkdir -p "${h}kubelet-$(hostname)" 2>/dev/null || true
done

case "$mode" in
  systemd)
    exec /sbin/init
    ;;
  sshd)
    mkdir -p /run/sshd
    exec /usr/bin/tini -- /usr/sbin/sshd -D -e
    ;;
  *)
    echo "kforge-machine-entrypoint: unknown mode $mode (sshd or systemd)" >&2
    exit 2
    ;;
esac
