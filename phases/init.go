package phases

// Where a phase's inputs come from, for a reader of one phase file:
//
//   - d.Cluster, d.Node, d.Host, d.Out and the command's choices: Config,
//     filled by package cluster from the cluster file and the flags.
//   - d.Facts, d.Services, d.NodeName, d.AdvertiseAddress, d.Endpoint,
//     d.CACertDirs, d.DNS: learned once by New (data.go).
//   - d.Results: what earlier phases of the run produced; each field of
//     Results (data.go) names the phase that sets it and those that read it.
//   - Paths, ports and file modes: package layout.
//   - Files for the host: render.go, from package templates.
//   - Changes to the host: d.Host and package host's helpers; services
//     (containerd, the kubelet): d.Services, never systemctl or the
//     supervisor directly.
//   - Objects in the cluster: package kube (typed objects, server-side
//     apply, waits).

// Init is the phase list of `kforge init`, in order.
func Init() []Phase {
	return []Phase{
		{Name: "preflight", Short: "Check that the host can run a control plane", Run: preflight},
		{Name: "bundle", Short: "Verify the bundle and install its binaries: containerd, runc, the CNI plugins, the kubelet", Run: recorded(loadBundle)},
		{Name: "runtime", Short: "Configure and start containerd", Run: recorded(containerRuntime)},
		{Name: "images", Short: "Import the bundle's images into containerd", Run: recorded(loadImages)},
		{Name: "kforge-image", Short: "Import kforge's own image, which runs the kubelet serving certificate approver", Run: recorded(kforgeImage)},
		{Name: "certs", Short: "Create or reuse the PKI under /etc/kubernetes/pki", Run: recorded(certsPhase)},
		{Name: "kubeconfig", Short: "Write the admin, super-admin, kubelet, controller-manager and scheduler kubeconfigs", Run: recorded(kubeconfigPhase)},
		{Name: "etcd", Short: "Create etcd's data directory (0700) and write its static pod manifest", Run: recorded(etcdPhase)},
		// The control plane's manifests come in two steps. The controller
		// manager and the scheduler start once the API server is ready:
		// started with it, they fight it for the CPU, and their first
		// requests are refused until RBAC is set up, after which they retry
		// 2-4 s later (the controller manager's lease) or back off (the
		// scheduler's informers, which it syncs before its lease).
		{Name: "control-plane", Short: "Write the control plane's static pod manifests", Children: []Phase{
			{Name: "apiserver", Short: "kube-apiserver, before the kubelet starts", Run: recorded(apiServerPhase)},
		}},
		{Name: "apiserver-lb", Short: "With several control planes, write the node-local load balancer in front of every API server", Run: recorded(apiServerLB)},
		{Name: "vip", Short: "With loadBalancer.virtualIP, write keepalived, which holds it on one live control plane", Run: recorded(virtualIP)},
		{Name: "kubelet", Short: "Configure and start the kubelet", Run: recorded(kubelet)},
		{Name: "wait", Short: "Wait for the API server's /readyz and for the node to be Ready", Run: waitControlPlane, API: true},
		{Name: "control-plane", Short: "Write the control plane's static pod manifests", Children: []Phase{
			{Name: "controller-manager", Short: "kube-controller-manager, once the API server is ready", Run: recorded(controlPlaneManifest("kube-controller-manager.yaml"))},
			{Name: "scheduler", Short: "kube-scheduler, once the API server is ready", Run: recorded(controlPlaneManifest("kube-scheduler.yaml"))},
		}},
		{Name: "upload-config", Short: "Store the cluster file and kubelet configuration in kube-system ConfigMaps", Run: uploadConfig, API: true},
		{Name: "bootstrap-token", Short: "Create the join token, cluster-info and the RBAC for TLS bootstrap", Run: bootstrapToken, API: true},
		{Name: "addons", Short: "Apply kube-proxy, CoreDNS and, with more than one node, kube-router", Run: addons, API: true},
		{Name: "mark-control-plane", Short: "Label the node; taint it NoSchedule unless it runs workloads", Run: markControlPlane, API: true},
		{Name: "control-plane-check", Short: "Wait for the controller manager and the scheduler to hold their leader leases", Run: controlPlaneCheck, API: true},
		{Name: "certs-auto-renew", Short: "With certs.autoRenew, install the daily job that renews certificates near expiry; without, remove it", Run: recorded(certsAutoRenew)},
		{Name: "node-ready", Short: "Wait for the node to be Ready with the pod network running, and for the kubelet's serving certificate", Run: nodeReady, API: true},
	}
}
