package templates

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// APIServerLB is the node-local load balancer of one node: HAProxy on
// loopback in front of every control plane's API server.
type APIServerLB struct {
	Image string
	// Servers are the control planes' API servers, in the cluster file's
	// order.
	Servers []LBServer
}

// LBServer is one API server behind the load balancer.
type LBServer struct {
	Name    string // the control plane's node name or address
	Address string // host:port
}

// Listen is where the node's components reach the API servers.
func (APIServerLB) Listen() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(layout.APIServerLBPort))
}

// HealthListen serves the load balancer's own /healthz.
func (APIServerLB) HealthListen() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(layout.APIServerLBHealthPort))
}

// HealthPort is the port of HealthListen.
func (APIServerLB) HealthPort() int { return layout.APIServerLBHealthPort }

// ConfigPath is HAProxy's configuration on the host.
func (APIServerLB) ConfigPath() string { return layout.APIServerLBConfig }

// RenderAPIServerLB renders HAProxy's configuration and its static pod,
// whose annotation carries the configuration's hash so that the kubelet
// restarts it when the configuration changes.
func RenderAPIServerLB(lb APIServerLB) ([]host.File, error) {
	if lb.Image == "" || len(lb.Servers) == 0 {
		return nil, fmt.Errorf("API server load balancer: needs an image and at least one API server")
	}
	for _, s := range lb.Servers {
		if _, _, err := net.SplitHostPort(s.Address); err != nil || s.Name == "" {
			return nil, fmt.Errorf("API server load balancer: server %q at %q: want a name and host:port", s.Name, s.Address)
		}
	}
	cfg, err := Render("lb/haproxy.cfg", lb)
	if err != nil {
		return nil, err
	}
	pod, err := Render("lb/haproxy.yaml", struct {
		APIServerLB
		ConfigHash string
	}{lb, sha(cfg)})
	if err != nil {
		return nil, err
	}
	return []host.File{
		{Path: layout.APIServerLBConfig, Data: cfg, Mode: layout.PublicMode},
		{Path: layout.APIServerLBManifest, Data: pod, Mode: layout.SecretMode},
	}, nil
}

// VIP is keepalived on one control plane, holding the cluster's virtual
// IP with the other control planes as unicast VRRP peers.
type VIP struct {
	Image     string
	VirtualIP string
	// Interface carries the virtual IP; Address is this control plane's
	// own address on it, Peers the other control planes'.
	Interface string
	Address   string
	Peers     []string
	// Priority orders the control planes for the first election; after
	// that, the holder keeps the address while it lives (nopreempt).
	Priority int
	// ClusterName makes the VRRP router ID, so that clusters sharing a
	// subnet do not answer each other.
	ClusterName string
	NodeName    string
}

// VirtualRouterID is VRRP's router ID (1-255), from the cluster's name and
// virtual IP.
func (v VIP) VirtualRouterID() int {
	h := fnv.New32a()
	h.Write([]byte(v.ClusterName + "/" + v.VirtualIP))
	return int(h.Sum32()%255) + 1
}

// RouterID names this keepalived in its log.
func (v VIP) RouterID() string { return "kforge-" + v.NodeName }

// ConfigPath is keepalived's configuration on the host.
func (VIP) ConfigPath() string { return layout.VIPConfig }

// RenderVIP renders keepalived's configuration and its static pod.
func RenderVIP(v VIP) ([]host.File, error) {
	if v.Image == "" || net.ParseIP(v.VirtualIP) == nil || net.ParseIP(v.Address) == nil || v.Interface == "" || v.NodeName == "" {
		return nil, fmt.Errorf("virtual IP: needs an image, the virtual IP, this node's name, address and interface (got %+v)", v)
	}
	if v.Priority < 1 || v.Priority > 254 {
		return nil, fmt.Errorf("virtual IP: priority %d is not in 1-254", v.Priority)
	}
	cfg, err := Render("lb/keepalived.conf", v)
	if err != nil {
		return nil, err
	}
	pod, err := Render("lb/keepalived.yaml", struct {
		VIP
		ConfigHash string
	}{v, sha(cfg)})
	if err != nil {
		return nil, err
	}
	return []host.File{
		{Path: layout.VIPConfig, Data: cfg, Mode: layout.PublicMode},
		{Path: layout.VIPManifest, Data: pod, Mode: layout.SecretMode},
	}, nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
