package config

import (
	_ "embed"

	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
)

// Defaults used when the file or flags leave a field empty.
var (
	// DefaultKubernetesVersion is the newest version kforge supports.
	DefaultKubernetesVersion = images.Default()
)

const (
	DefaultPodSubnet     = "10.244.0.0/16"
	DefaultServiceSubnet = "10.96.0.0/12"
	DefaultCAValidity    = "87600h"
	DefaultValidity      = "8760h"
	DefaultSSHPort       = 22
	DefaultSSHUser       = "root"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// DefaultsYAML is a complete, commented, valid cluster file holding every
// default: what `kforge config print-defaults` prints.
func DefaultsYAML() []byte { return append([]byte(nil), defaultsYAML...) }

// Default is the cluster kforge builds with no cluster file: one
// control-plane host, the machine kforge runs on.
func Default() *Cluster {
	c := &Cluster{
		APIVersion: APIVersion,
		Kind:       Kind,
		Hosts:      []Host{{Role: RoleControlPlane, Local: true}},
	}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every empty field with its default.
func (c *Cluster) ApplyDefaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.Name, layout.ClusterName)
	set(&c.KubernetesVersion, DefaultKubernetesVersion)
	set(&c.Runtime, RuntimeBundle)
	set(&c.Networking.PodSubnet, DefaultPodSubnet)
	set(&c.Networking.ServiceSubnet, DefaultServiceSubnet)
	set(&c.Networking.DNSDomain, layout.DNSDomain)
	set(&c.Certs.Algorithm, AlgorithmECDSAP256)
	set(&c.Certs.CAValidity, DefaultCAValidity)
	set(&c.Certs.Validity, DefaultValidity)
	for i := range c.Hosts {
		h := &c.Hosts[i]
		if h.Local {
			continue
		}
		set(&h.SSH.User, DefaultSSHUser)
		if h.SSH.Port == 0 {
			h.SSH.Port = DefaultSSHPort
		}
	}
	for _, b := range []**bool{&c.Addons.MetricsServer, &c.Addons.Storage} {
		if *b == nil {
			*b = new(true)
		}
	}
	if c.CNI.Plugin == "" {
		c.CNI.Plugin = "bridge"
		if len(c.Hosts) > 1 {
			c.CNI.Plugin = "kube-router"
		}
	}
}
