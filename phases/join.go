package phases

// Join is the phase list of `kforge join`, in order. Discovery comes
// before anything is installed: a wrong token or CA hash fails within
// seconds and leaves the host as it was.
func Join() []Phase {
	return []Phase{
		{Name: "preflight", Short: "Check that the host can join as a worker", Run: joinPreflight},
		{Name: "discovery", Short: "Verify the cluster with the token and CA hash; write its CA and the kubelet's bootstrap kubeconfig", Run: joinDiscovery},
		{Name: "bundle", Short: "Verify the bundle and install a worker's binaries: containerd, runc, the CNI plugins, the kubelet", Run: withCluster(loadBundle)},
		{Name: "runtime", Short: "Configure and start containerd", Run: withCluster(containerRuntime)},
		{Name: "images", Short: "Import a worker's images into containerd: the pod sandbox, kube-proxy, the network, CoreDNS", Run: withCluster(loadImages)},
		{Name: "apiserver-lb", Short: "With several control planes, write the node-local load balancer in front of every API server", Run: withCluster(apiServerLB)},
		{Name: "kubelet-start", Short: "Configure the kubelet and start it; it gets its client certificate by TLS bootstrap", Run: kubeletStart},
		{Name: "wait", Short: "Wait for the kubelet's client certificate, for the node to be Ready and for its serving certificate", Run: joinWait},
	}
}
