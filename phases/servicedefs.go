package phases

import (
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/services"
	"kforge.dev/kforge/templates"
)

// containerdService is containerd with kforge's config. Under systemd it
// is the OS package's unit.
func containerdService() services.Service {
	return services.Service{
		Name:        "containerd",
		Argv:        []string{"containerd", "--config", layout.ContainerdConfig},
		Unit:        "containerd",
		Config:      []string{layout.ContainerdConfig},
		ReadySocket: layout.ContainerdSocket,
	}
}

// kubeletService is the kubelet with the files the kubelet phase renders.
// Under systemd it is kforge's unit, which reads the same flags file.
func kubeletService(k templates.Kubelet) services.Service {
	return services.Service{
		Name:   "kubelet",
		Argv:   append([]string{k.BinaryPath}, k.Args()...),
		After:  "containerd",
		Unit:   "kubelet",
		Config: []string{layout.KubeletConfig, layout.KubeletConf},
	}
}
