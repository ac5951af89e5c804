package phases

// JoinControlPlane is the phase list of a control plane that joins a
// running cluster (kforge init -f runs it for every control plane after
// the first, through its SSH connection, with ControlPlaneSource set to
// one that runs). Its etcd joins as a learner and votes once it has caught
// up; its API server starts after that, on its own etcd member.
func JoinControlPlane() []Phase {
	return []Phase{
		{Name: "preflight", Short: "Check that the host can run a control plane", Run: preflight},
		{Name: "bundle", Short: "Verify the bundle and install its binaries: containerd, runc, the CNI plugins, the kubelet", Run: recorded(loadBundle)},
		{Name: "runtime", Short: "Configure and start containerd", Run: recorded(containerRuntime)},
		{Name: "images", Short: "Import the bundle's images into containerd", Run: recorded(loadImages)},
		{Name: "kforge-image", Short: "Import kforge's own image, which runs the kubelet serving certificate approver", Run: recorded(kforgeImage)},
		{Name: "shared-secrets", Short: "Copy the cluster's CAs, service-account keys and Secrets encryption key from a running control plane", Run: recorded(sharedSecrets)},
		{Name: "certs", Short: "Issue this node's certificates from the cluster's CAs", Run: recorded(certsPhase)},
		{Name: "kubeconfig", Short: "Write the admin, super-admin, kubelet, controller-manager and scheduler kubeconfigs", Run: recorded(kubeconfigPhase)},
		{Name: "apiserver-lb", Short: "Write the node-local load balancer in front of every API server", Run: recorded(apiServerLB)},
		{Name: "vip", Short: "With loadBalancer.virtualIP, write keepalived, which holds it on one live control plane", Run: recorded(virtualIP)},
		{Name: "etcd-join", Short: "Add this host's etcd to the cluster as a learner and write its static pod manifest", Run: recorded(etcdJoin)},
		{Name: "kubelet", Short: "Configure and start the kubelet", Run: recorded(kubelet)},
		{Name: "etcd-promote", Short: "Promote this host's etcd member to a voting one once it has caught up", Run: etcdPromote},
		{Name: "control-plane", Short: "Write the control plane's static pod manifests", Children: []Phase{
			{Name: "apiserver", Short: "kube-apiserver, on this host's etcd member", Run: recorded(apiServerPhase)},
		}},
		{Name: "wait", Short: "Wait for this host's API server's /readyz and for the node", Run: waitControlPlane, API: true},
		{Name: "control-plane", Short: "Write the control plane's static pod manifests", Children: []Phase{
			{Name: "controller-manager", Short: "kube-controller-manager", Run: recorded(controlPlaneManifest("kube-controller-manager.yaml"))},
			{Name: "scheduler", Short: "kube-scheduler", Run: recorded(controlPlaneManifest("kube-scheduler.yaml"))},
		}},
		{Name: "mark-control-plane", Short: "Label the node; taint it NoSchedule unless it runs workloads", Run: markControlPlane, API: true},
		{Name: "control-plane-check", Short: "Wait for the controller manager's and the scheduler's leader leases to be renewed", Run: controlPlaneCheck, API: true},
		{Name: "certs-auto-renew", Short: "With certs.autoRenew, install the daily job that renews certificates near expiry; without, remove it", Run: recorded(certsAutoRenew)},
		{Name: "node-ready", Short: "Wait for the node to be Ready with the pod network running, and for the kubelet's serving certificate", Run: nodeReady, API: true},
	}
}
