#!/usr/bin/env bash
# Prepares a debootstrap root file system as a machine image (run by
# image.sh, as root, on the host):
#   rootfs.sh ROOT ENTRYPOINT MIRROR
#
# - apt sources like the hosts': bookworm, bookworm-updates and security, as
#   an air-gapped host keeps them: the machines' network has no route out, so
#   `apt-get update` in a machine fails as it would there;
# - no SSH host keys and an empty /etc/machine-id: every machine makes its
#   own on first start (entrypoint.sh), so no two machines share them;
# - sshd: keys only, root by key (Debian's default), no DNS lookups;
# - the user kforge, with a home, bash and passwordless sudo;
# - the entrypoint, /usr/local/sbin/kforge-machine-entrypoint.
set -euo pipefail
root=$1 entrypoint=$2 mirror=$3

cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES

rm -f "$root"/etc/ssh/ssh_host_*
cat >"$root/etc/ssh/sshd_config.d/kforge-machine.conf" <<'SSHD'
# kforge machine: logins by key only.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
SSHD

: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"

chroot "$root" useradd --create-home --shell /bin/bash kforge
printf 'kforge ALL=(ALL) NOPASSWD:ALL\n' >"$root/etc/sudoers.d/kforge"
chmod 0440 "$root/etc/sudoers.d/kforge"

install -m 0755 "$entrypoint" "$root/usr/local/sbin/kforge-machine-entrypoint"
