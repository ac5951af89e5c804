#!/usr/bin/env bash
# Installs the Debian packages kforge's build and tests need. Idempotent:
# packages already present are not touched and apt is not called.
set -euo pipefail

packages=(
  openssh-server # sshd for the SSH provider's integration tests
  openssh-client # ssh-keygen, ssh-agent
  sudo           # non-root SSH users with sudo
  openssl        # openssl verify on the generated PKI
  containerd     # a containerd of the OS (1.6): the image tests, and runtime: host in make e2e-versions;
  runc           # kforge's clusters run the bundle's containerd 2.x
  libseccomp-dev # runc is built with seccomp support, linked statically
  containernetworking-plugins # the OS's CNI plugins in /usr/lib/cni, for the same tests
  iptables       # kube-proxy and the CNI
  conntrack
  socat          # kubectl port-forward
  ethtool
  ebtables
  debootstrap    # the Debian minbase layer of kube-proxy and kube-router images
  ca-certificates
  iproute2       # ss and ip in the end-to-end tests and reset
  curl           # make bench polls the API server's /readyz
  jq             # make bench reads kforge's phase events (-o json)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}; run 'sudo make deps'" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
