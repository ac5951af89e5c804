package phases

// JoinControlPlane is the phase list of a control plane that joins a
// running cluster (kforge init -f runs it for every control plane after
// the first, through its SSH connection, with ControlPlaneSource set to
// one that runs). Its etcd joins as a learner and votes once it has caught
// up; its API server starts after that, on its own etcd member.
func JoinControlPlane() []Phase {
	from := map[string]Phase{}
	for _, p := range Init() {
		if len(p.Children) == 0 {
			from[p.Name] = p
		}
	}
	return []Phase{
		from["preflight"], from["bundle"], from["runtime"], from["images"], from["kforge-image"],
		{Name: "shared-secrets", Short: "Copy the cluster's CAs, service-account keys and Secrets encryption key from a running control plane", Run: recorded(sharedSecrets)},
		{Name: "certs", Short: "Issue this node's certificates from the cluster's CAs", Run: recorded(certsPhase)},
		from["kubeconfig"], from["apiserver-lb"], from["vip"],
		{Name: "etcd-join", Short: "Add this host's etcd to the cluster as a learner and write its static pod manifest", Run: recorded(etcdJoin)},
		from["kubelet"],
		{Name: "etcd-promote", Short: "Promote this host's etcd member to a voting one once it has caught up", Run: etcdPromote},
		{Name: "control-plane", Short: "Write the control plane's static pod manifests", Children: []Phase{
			{Name: "apiserver", Short: "kube-apiserver, on this host's etcd member", Run: recorded(apiServerPhase)},
		}},
		{Name: "wait", Short: "Wait for this host's API server's /readyz and for the node", Run: waitControlPlane, API: true},
		{Name: "control-plane", Short: "Write the control plane's static pod manifests", Children: []Phase{
			{Name: "controller-manager", Short: "kube-controller-manager", Run: recorded(controlPlaneManifest("kube-controller-manager.yaml"))},
			{Name: "scheduler", Short: "kube-scheduler", Run: recorded(controlPlaneManifest("kube-scheduler.yaml"))},
		}},
		from["mark-control-plane"], from["control-plane-check"], from["certs-auto-renew"], from["node-ready"],
	}
}
