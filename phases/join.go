package phases

// Join is the phase list of `kforge join`, in order. Discovery comes
// before anything is installed: a wrong token or CA hash fails within
// seconds and leaves the host as it was.
func Join() []Phase {
	return []Phase{
		{Name: "preflight", Short: "Check that the host can join as a worker", Run: joinPreflight},
		{Name: "discovery", Short: "Verify the cluster with the token and CA hash; write its CA and the kubelet's bootstrap kubeconfig", Run: joinDiscovery},
		{Name: "runtime", Short: "Install, configure and start containerd and the CNI plugins", Run: withCluster(containerRuntime)},
		{Name: "bundle", Short: "Verify the bundle, install its binaries and import its images", Run: withCluster(loadBundle)},
		{Name: "kubelet-start", Short: "Configure the kubelet and start it; it gets its client certificate by TLS bootstrap", Run: kubeletStart},
		{Name: "wait", Short: "Wait for the kubelet's client certificate and for the node to be Ready", Run: joinWait},
	}
}
