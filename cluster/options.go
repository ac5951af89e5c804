// Package cluster is what kforge's commands do, free of flags: it loads the
// cluster file, connects to hosts and runs the phase lists. cmd/kforge only
// turns flags into these options.
package cluster

import (
	"fmt"
	"strings"

	"kforge.dev/kforge/config"
)

// Overrides are command-line values that win over the cluster file.
type Overrides struct {
	KubernetesVersion    string
	PodSubnet            string
	ServiceSubnet        string
	DNSDomain            string
	AdvertiseAddress     string
	ControlPlaneEndpoint string
	NodeName             string
	CertSANs             []string
	CertAlgorithm        string
}

// LoadConfig reads the cluster file (or kforge's single-host defaults when
// file is empty), applies the overrides and validates the result.
func LoadConfig(file string, o Overrides) (*config.Cluster, error) {
	var c *config.Cluster
	name := "(defaults)"
	if file == "" {
		c = config.Default()
	} else {
		data, err := readFile(file)
		if err != nil {
			return nil, err
		}
		if c, err = config.Parse(file, data); err != nil {
			return nil, err
		}
		name = file
	}
	o.apply(c)
	if err := c.Validate(name); err != nil {
		return nil, fmt.Errorf("%w\n(command-line flags are applied before these checks)", err)
	}
	if err := c.ReadRegistryCAs(name); err != nil {
		return nil, err
	}
	return c, nil
}

func (o Overrides) apply(c *config.Cluster) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = strings.TrimSpace(v)
		}
	}
	set(&c.KubernetesVersion, o.KubernetesVersion)
	set(&c.Networking.PodSubnet, o.PodSubnet)
	set(&c.Networking.ServiceSubnet, o.ServiceSubnet)
	set(&c.Networking.DNSDomain, o.DNSDomain)
	set(&c.ControlPlaneEndpoint, o.ControlPlaneEndpoint)
	set(&c.Certs.Algorithm, o.CertAlgorithm)
	c.Certs.ExtraSANs = append(c.Certs.ExtraSANs, o.CertSANs...)
	for i := range c.Hosts {
		if c.Hosts[i].Role != config.RoleControlPlane {
			continue
		}
		set(&c.Hosts[i].NodeIP, o.AdvertiseAddress)
		set(&c.Hosts[i].Name, o.NodeName)
		break
	}
}
