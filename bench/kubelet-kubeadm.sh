#!/bin/sh
# The kubelet as kubeadm's systemd drop-in (10-kubeadm.conf) starts it, for
# make bench's kubeadm runs under kforge's supervisor. kubeadm restarts it
# through the systemctl shim once it has written its files; should it start
# earlier, it waits for them (polling every 100 ms, at most 60 s) as
# systemd's restart loop would.
i=0
while [ ! -s /var/lib/kubelet/config.yaml ] || [ ! -s /var/lib/kubelet/kubeadm-flags.env ]; do
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then
    echo "kubelet-kubeadm: no /var/lib/kubelet/config.yaml or kubeadm-flags.env after 60s" >&2
    exit 1
  fi
  sleep 0.1
done
KUBELET_KUBECONFIG_ARGS="--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
KUBELET_CONFIG_ARGS="--config=/var/lib/kubelet/config.yaml"
. /var/lib/kubelet/kubeadm-flags.env
if [ -f /etc/default/kubelet ]; then . /etc/default/kubelet; fi
# shellcheck disable=SC2086 # the variables hold flags split on spaces, as systemd splits them
exec /usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS ${KUBELET_KUBEADM_ARGS:-} ${KUBELET_EXTRA_ARGS:-}
