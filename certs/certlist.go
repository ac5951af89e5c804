package certs

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"regexp"
	"strings"
)

// Names of the certificates, as kubeadm names them.
const (
	CAName                     = "ca"
	APIServerName              = "apiserver"
	APIServerKubeletClientName = "apiserver-kubelet-client"
	FrontProxyCAName           = "front-proxy-ca"
	FrontProxyClientName       = "front-proxy-client"
	EtcdCAName                 = "etcd-ca"
	EtcdServerName             = "etcd-server"
	EtcdPeerName               = "etcd-peer"
	EtcdHealthcheckClientName  = "etcd-healthcheck-client"
	APIServerEtcdClientName    = "apiserver-etcd-client"
)

// Service-account key pair files, relative to the PKI directory.
const (
	SAKeyFile = "sa.key"
	SAPubFile = "sa.pub"
)

// Groups kubeadm binds to cluster-admin.
const (
	ClusterAdminsGroup = "kubeadm:cluster-admins"
	MastersGroup       = "system:masters"
)

// Cert describes one certificate of the PKI.
type Cert struct {
	// Name identifies the certificate: "apiserver", "etcd-server".
	Name string
	// LongName says what it is for.
	LongName string
	// BaseName is its file name relative to the PKI directory, without
	// extension: "etcd/server" is etcd/server.crt and etcd/server.key.
	BaseName string
	// CA is the Name of the CA that signs it; empty for a self-signed CA.
	CA string
	// CommonName is the subject CN; empty means the node name.
	CommonName string
	// Organization is the subject O.
	Organization []string
	// Usages are the extended key usages of a leaf; nil for a CA.
	Usages []x509.ExtKeyUsage
	// SANs returns the certificate's subject alternative names; nil when
	// it has none.
	SANs func(Spec) (AltNames, error)
}

// IsCA reports whether c is a self-signed CA.
func (c Cert) IsCA() bool { return c.CA == "" }

// CertFile is the certificate's path relative to the PKI directory.
func (c Cert) CertFile() string { return c.BaseName + ".crt" }

// KeyFile is the private key's path relative to the PKI directory.
func (c Cert) KeyFile() string { return c.BaseName + ".key" }

// CN returns the subject CN for s.
func (c Cert) CN(s Spec) string {
	if c.CommonName == "" {
		return s.NodeName
	}
	return c.CommonName
}

// List returns every certificate of the PKI in the order kubeadm creates
// them; each CA comes before the certificates it signs.
func List() []Cert {
	return []Cert{
		{Name: CAName, LongName: "self-signed Kubernetes CA to provision identities for other Kubernetes components",
			BaseName: "ca", CommonName: "kubernetes"},
		{Name: APIServerName, LongName: "certificate for serving the Kubernetes API",
			BaseName: "apiserver", CA: CAName, CommonName: "kube-apiserver",
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, SANs: apiServerSANs},
		{Name: APIServerKubeletClientName, LongName: "certificate for the API server to connect to kubelet",
			BaseName: "apiserver-kubelet-client", CA: CAName, CommonName: "kube-apiserver-kubelet-client",
			Organization: []string{ClusterAdminsGroup}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{Name: FrontProxyCAName, LongName: "self-signed CA to provision identities for front proxy",
			BaseName: "front-proxy-ca", CommonName: "front-proxy-ca"},
		{Name: FrontProxyClientName, LongName: "certificate for the front proxy client",
			BaseName: "front-proxy-client", CA: FrontProxyCAName, CommonName: "front-proxy-client",
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{Name: EtcdCAName, LongName: "self-signed CA to provision identities for etcd",
			BaseName: "etcd/ca", CommonName: "etcd-ca"},
		{Name: EtcdServerName, LongName: "certificate for serving etcd",
			BaseName: "etcd/server", CA: EtcdCAName,
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, SANs: etcdSANs},
		{Name: EtcdPeerName, LongName: "certificate for etcd nodes to communicate with each other",
			BaseName: "etcd/peer", CA: EtcdCAName,
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, SANs: etcdSANs},
		{Name: EtcdHealthcheckClientName, LongName: "certificate for liveness probes to healthcheck etcd",
			BaseName: "etcd/healthcheck-client", CA: EtcdCAName, CommonName: "kube-etcd-healthcheck-client",
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{Name: APIServerEtcdClientName, LongName: "certificate the apiserver uses to access etcd",
			BaseName: "apiserver-etcd-client", CA: EtcdCAName, CommonName: "kube-apiserver-etcd-client",
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	}
}

// Lookup returns the certificate called name.
func Lookup(name string) (Cert, bool) {
	for _, c := range List() {
		if c.Name == name {
			return c, true
		}
	}
	return Cert{}, false
}

// AltNames are a certificate's subject alternative names.
type AltNames struct {
	DNSNames []string
	IPs      []net.IP
}

// Strings renders the names as openssl prints them: DNS:x, IP Address:y.
func (a AltNames) Strings() []string {
	var out []string
	for _, d := range a.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range a.IPs {
		out = append(out, "IP Address:"+ip.String())
	}
	return out
}

func (a *AltNames) add(names ...string) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			a.addIP(ip)
			continue
		}
		for _, d := range a.DNSNames {
			if d == n {
				n = ""
				break
			}
		}
		if n != "" {
			a.DNSNames = append(a.DNSNames, n)
		}
	}
}

func (a *AltNames) addIP(ips ...net.IP) {
	for _, ip := range ips {
		dup := false
		for _, have := range a.IPs {
			dup = dup || have.Equal(ip)
		}
		if !dup {
			a.IPs = append(a.IPs, ip)
		}
	}
}

// dnsName accepts RFC 1123 subdomains and a leading "*." wildcard.
var dnsName = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// apiServerSANs are kubeadm's: the node name, the kubernetes service names,
// the service ClusterIP, the advertise address, the control-plane endpoint's
// host and the extra SANs.
func apiServerSANs(s Spec) (AltNames, error) {
	var a AltNames
	a.add(s.NodeName, "kubernetes", "kubernetes.default", "kubernetes.default.svc")
	if s.DNSDomain != "" {
		a.add("kubernetes.default.svc." + s.DNSDomain)
	}
	vip, err := FirstServiceIP(s.ServiceSubnet)
	if err != nil {
		return a, err
	}
	a.addIP(vip, s.AdvertiseAddress)
	if s.ControlPlaneEndpoint != "" {
		a.add(EndpointHost(s.ControlPlaneEndpoint))
	}
	for _, san := range s.ExtraSANs {
		if net.ParseIP(san) == nil && !dnsName.MatchString(san) {
			return a, fmt.Errorf("certs: extra SAN %q is neither an IP address nor a DNS name", san)
		}
		a.add(san)
	}
	return a, nil
}

// etcdSANs are kubeadm's for etcd's serving and peer certificates.
func etcdSANs(s Spec) (AltNames, error) {
	var a AltNames
	a.add(s.NodeName, "localhost")
	a.addIP(s.AdvertiseAddress, net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback)
	return a, nil
}

// FirstServiceIP returns the first address of a service CIDR (of the first
// CIDR of a comma-separated list): the kubernetes service's ClusterIP.
func FirstServiceIP(subnet string) (net.IP, error) {
	first, _, _ := strings.Cut(subnet, ",")
	_, cidr, err := net.ParseCIDR(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("certs: service subnet %q: %w", subnet, err)
	}
	base := cidr.IP
	if v4 := base.To4(); v4 != nil {
		base = v4
	}
	v := new(big.Int).Add(new(big.Int).SetBytes(base), big.NewInt(1))
	ip := make(net.IP, len(base))
	v.FillBytes(ip)
	if !cidr.Contains(ip) {
		return nil, fmt.Errorf("certs: service subnet %q has no room for the API server's address", subnet)
	}
	return ip, nil
}

// EndpointHost returns the host of "host", "host:port", "[v6]:port" or a
// bare IPv6 address.
func EndpointHost(endpoint string) string {
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(endpoint, "["), "]")
}
