// Package approver approves the kubelets' serving certificate requests
// (signer kubernetes.io/kubelet-serving) after checking each one against
// the Node it is for, and denies the rest with a reason. Kubernetes ships
// no approver for that signer; kube-controller-manager signs a request
// once something has approved it.
package approver

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

// Identity of a kubelet: its user name is NodeUserPrefix + the node's
// name, in NodesGroup.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)

// allowedUsages are what a kubelet asks for its serving certificate: server
// auth, with digital signature (and key encipherment for an RSA key).
var allowedUsages = []certificatesv1.KeyUsage{
	certificatesv1.UsageDigitalSignature,
	certificatesv1.UsageKeyEncipherment,
	certificatesv1.UsageServerAuth,
}

// NodeName is the node a request is from, from its requester: "" when the
// requester is not a node (not system:node:NAME in system:nodes).
func NodeName(csr *certificatesv1.CertificateSigningRequest) string {
	name, ok := strings.CutPrefix(csr.Spec.Username, NodeUserPrefix)
	if !ok || name == "" || !slices.Contains(csr.Spec.Groups, NodesGroup) {
		return ""
	}
	return name
}

// Review checks a kubelet-serving request against node, the Node its
// requester is (NodeName): the request is signed by its key, names the node
// as subject (CN system:node:NAME, O system:nodes), asks only for server
// auth, and its subject alternative names are only the node's own
// addresses: DNS names among its Hostname and DNS addresses, IPs among its
// InternalIP and ExternalIP ones. nil means approve; an error says why to
// deny.
func Review(csr *certificatesv1.CertificateSigningRequest, node *corev1.Node) error {
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
		return fmt.Errorf("signer %q is not %s", csr.Spec.SignerName, certificatesv1.KubeletServingSignerName)
	}
	name := NodeName(csr)
	if name == "" {
		return fmt.Errorf("requester %q (groups %v) is not a node: a kubelet-serving certificate is requested by the kubelet, as %sNAME in %s", csr.Spec.Username, csr.Spec.Groups, NodeUserPrefix, NodesGroup)
	}
	if node == nil || node.Name != name {
		return fmt.Errorf("node %s does not exist", name)
	}
	for _, u := range csr.Spec.Usages {
		if !slices.Contains(allowedUsages, u) {
			return fmt.Errorf("usage %q is not allowed: a kubelet serving certificate has only %v", u, allowedUsages)
		}
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageServerAuth) {
		return fmt.Errorf("usages %v lack %q", csr.Spec.Usages, certificatesv1.UsageServerAuth)
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return fmt.Errorf("the request is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return fmt.Errorf("the request does not parse: %v", err)
	}
	if err := req.CheckSignature(); err != nil {
		return fmt.Errorf("the request's signature does not verify: %v", err)
	}
	if req.Subject.CommonName != csr.Spec.Username {
		return fmt.Errorf("subject CN %q is not the requester %q", req.Subject.CommonName, csr.Spec.Username)
	}
	if !slices.Equal(req.Subject.Organization, []string{NodesGroup}) {
		return fmt.Errorf("subject O %v is not [%s]", req.Subject.Organization, NodesGroup)
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return fmt.Errorf("the request names e-mail or URI SANs; a kubelet serving certificate has only DNS and IP SANs")
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return fmt.Errorf("the request names no subject alternative name")
	}
	dns, ips := addresses(node)
	for _, n := range req.DNSNames {
		if !slices.Contains(dns, n) {
			return fmt.Errorf("DNS SAN %q is not one of node %s's addresses %v", n, name, dns)
		}
	}
	for _, ip := range req.IPAddresses {
		if !slices.ContainsFunc(ips, func(o net.IP) bool { return o.Equal(ip) }) {
			return fmt.Errorf("IP SAN %s is not one of node %s's addresses %v", ip, name, ips)
		}
	}
	return nil
}

// addresses are n's names (Hostname, InternalDNS, ExternalDNS) and IPs
// (InternalIP, ExternalIP), as the kubelet puts them in its request.
func addresses(n *corev1.Node) (dns []string, ips []net.IP) {
	for _, a := range n.Status.Addresses {
		switch a.Type {
		case corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalDNS:
			dns = append(dns, a.Address)
		case corev1.NodeInternalIP, corev1.NodeExternalIP:
			if ip := net.ParseIP(a.Address); ip != nil {
				ips = append(ips, ip)
			}
		}
	}
	return dns, ips
}
