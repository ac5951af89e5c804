// Package kubeconfig writes the kubeconfig files of a control-plane node,
// as kubeadm does: admin.conf, super-admin.conf, kubelet.conf,
// controller-manager.conf and scheduler.conf under /etc/kubernetes, each
// with a client certificate signed by the cluster CA from the PKI directory.
// Files are read and written only through a host.Host.
package kubeconfig

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"time"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/layout"
)

// Defaults, as kubeadm's.
const (
	// Mode is the mode of every kubeconfig file: it holds a private key.
	Mode = layout.SecretMode
)

// Names of the kubeconfig files, without ".conf".
const (
	AdminName             = "admin"
	SuperAdminName        = "super-admin"
	KubeletName           = "kubelet"
	ControllerManagerName = "controller-manager"
	SchedulerName         = "scheduler"
)

// Spec is what the kubeconfig files are made for.
type Spec struct {
	// Dir holds the kubeconfig files; layout.KubernetesDir when empty.
	Dir string
	// PKIDir holds ca.crt and ca.key; layout.PKIDir when empty.
	PKIDir string
	// ClusterName names the cluster entry; layout.ClusterName when empty.
	ClusterName string
	// NodeName is this node's name (the kubelet's identity).
	NodeName string
	// AdvertiseAddress and BindPort are the local API server's address;
	// BindPort is layout.APIServerPort when zero.
	AdvertiseAddress net.IP
	BindPort         int
	// ControlPlaneEndpoint is host or host:port (the port defaults to
	// BindPort); the local API server when empty.
	ControlPlaneEndpoint string
	// KubeletEndpoint, when set, is host:port of kubelet.conf's server in
	// place of the endpoint: the node's own load balancer.
	KubeletEndpoint string
	// Algorithm of new client keys; certs.AlgorithmECDSAP256 when empty.
	Algorithm string
	// Validity of new client certificates; certs.DefaultValidity when zero.
	Validity time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// WithDefaults returns s with every empty field set to its default.
func (s Spec) WithDefaults() Spec {
	if s.Dir == "" {
		s.Dir = layout.KubernetesDir
	}
	if s.PKIDir == "" {
		s.PKIDir = layout.PKIDir
	}
	if s.ClusterName == "" {
		s.ClusterName = layout.ClusterName
	}
	if s.BindPort == 0 {
		s.BindPort = layout.APIServerPort
	}
	if s.Algorithm == "" {
		s.Algorithm = certs.AlgorithmECDSAP256
	}
	if s.Validity == 0 {
		s.Validity = certs.DefaultValidity
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return s
}

// Identity is the user of one kubeconfig file.
type Identity struct {
	// Name is the file's name without ".conf".
	Name string
	// User is the certificate's CN and the kubeconfig's user name.
	User string
	// Organization is the certificate's O: the user's groups.
	Organization []string
	// Local identities talk to the node's own API server rather than to
	// the control-plane endpoint.
	Local bool
}

// Identities returns kubeadm's kubeconfig identities for a node.
func Identities(nodeName string) []Identity {
	return []Identity{
		{Name: AdminName, User: "kubernetes-admin", Organization: []string{certs.ClusterAdminsGroup}},
		{Name: SuperAdminName, User: "kubernetes-super-admin", Organization: []string{certs.MastersGroup}},
		{Name: KubeletName, User: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
		{Name: ControllerManagerName, User: "system:kube-controller-manager", Local: true},
		{Name: SchedulerName, User: "system:kube-scheduler", Local: true},
	}
}

// Identity returns the identity called name for s's node.
func (s Spec) Identity(name string) (Identity, error) {
	for _, id := range Identities(s.NodeName) {
		if id.Name == name {
			return id, nil
		}
	}
	return Identity{}, fmt.Errorf("kubeconfig: no identity %q", name)
}

// Path returns the file of id.
func (s Spec) Path(id Identity) string { return path.Join(s.WithDefaults().Dir, id.Name+".conf") }

// Context returns the name of id's context: "<user>@<cluster>".
func (s Spec) Context(id Identity) string { return id.User + "@" + s.WithDefaults().ClusterName }

// Server returns the API server URL id uses.
func (s Spec) Server(id Identity) (string, error) {
	s = s.WithDefaults()
	if s.AdvertiseAddress == nil {
		return "", fmt.Errorf("kubeconfig: advertise address is empty")
	}
	local := "https://" + net.JoinHostPort(s.AdvertiseAddress.String(), strconv.Itoa(s.BindPort))
	if id.Name == KubeletName && s.KubeletEndpoint != "" {
		return "https://" + s.KubeletEndpoint, nil
	}
	if id.Local || s.ControlPlaneEndpoint == "" {
		return local, nil
	}
	host, port := certs.EndpointHost(s.ControlPlaneEndpoint), strconv.Itoa(s.BindPort)
	if _, p, err := net.SplitHostPort(s.ControlPlaneEndpoint); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("kubeconfig: control-plane endpoint %q: bad port", s.ControlPlaneEndpoint)
		}
		port = p
	}
	if host == "" {
		return "", fmt.Errorf("kubeconfig: control-plane endpoint %q has no host", s.ControlPlaneEndpoint)
	}
	return "https://" + net.JoinHostPort(host, port), nil
}
