// Package renewal re-issues a control plane's leaf certificates and the
// client certificates of its kubeconfigs from the cluster's existing CAs,
// as kubeadm certs renew does: each keeps its subject, usages and SANs
// (the API server's may gain names), gets a new key of the same kind, and
// is valid from now. The CAs, the service-account keys and the encryption
// key are never touched.
package renewal

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kubeconfig"
	"kforge.dev/kforge/layout"
)

// All names every renewable certificate.
const All = "all"

// Static pods, named as their manifests and mirror pods are.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
)

// Components is the order renewal restarts them in.
var Components = []string{Etcd, APIServer, ControllerManager, Scheduler}

// Names lists what Renew takes, in kubeadm's order: the leaf certificates,
// then the kubeconfigs.
func Names() []string {
	var out []string
	for _, c := range certs.List() {
		if !c.IsCA() {
			out = append(out, c.Name)
		}
	}
	return append(out, "admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf")
}

// usedBy is the static pod that reads each renewable file; admin.conf and
// super-admin.conf are read by no component.
var usedBy = map[string]string{
	certs.APIServerName: APIServer, certs.APIServerKubeletClientName: APIServer, certs.FrontProxyClientName: APIServer,
	certs.APIServerEtcdClientName: APIServer,
	certs.EtcdServerName:          Etcd, certs.EtcdPeerName: Etcd, certs.EtcdHealthcheckClientName: Etcd,
	"controller-manager.conf": ControllerManager, "scheduler.conf": Scheduler,
}

// Options say what to renew.
type Options struct {
	// Names are Names() entries, or All.
	Names []string
	// Validity of the new certificates (capped by their CA's).
	Validity time.Duration
	// APIServerExtraSANs are added to the API server certificate's.
	APIServerExtraSANs []string
	Now                time.Time
}

// Result says what was renewed and which static pods read it.
type Result struct {
	Renewed []string
	// Restart lists the static pods to restart, in Components' order.
	Restart []string
}

// Expand turns All and names into the ordered, checked list.
func Expand(names []string) ([]string, error) {
	known := Names()
	if len(names) == 0 {
		return nil, fmt.Errorf("name what to renew: all, or one or more of %s", strings.Join(known, ", "))
	}
	want := map[string]bool{}
	for _, n := range names {
		switch {
		case n == All:
			for _, k := range known {
				want[k] = true
			}
		case slices.Contains(known, n):
			want[n] = true
		default:
			return nil, fmt.Errorf("no certificate %q to renew: use all, or one or more of %s", n, strings.Join(known, ", "))
		}
	}
	var out []string
	for _, k := range known {
		if want[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

type pending struct {
	name  string
	files []host.File // a key before its certificate
}

// Renew re-issues o.Names on h. Every new certificate is made before any
// file is written, so that a certificate that cannot be renewed (a missing
// CA, a damaged file) leaves all the old ones. Each file is then replaced
// atomically, a key before its certificate, as kubeadm does; a run
// interrupted between the two is mended by running it again.
func Renew(ctx context.Context, h host.Host, o Options) (Result, error) {
	names, err := Expand(o.Names)
	if err != nil {
		return Result{}, err
	}
	cas := map[string]*certs.CA{}
	ca := func(base string) (*certs.CA, error) {
		if c, ok := cas[base]; ok {
			return c, nil
		}
		c, err := certs.LoadCA(ctx, h, layout.PKIDir, base, o.Now)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w (the CAs are not renewed: they last 10 years)", base, h.Name(), err)
		}
		cas[base] = c
		return c, nil
	}
	var plan []pending
	var errs []error
	for _, n := range names {
		var p pending
		var err error
		if strings.HasSuffix(n, ".conf") {
			p, err = renewKubeconfig(ctx, h, n, o, ca)
		} else {
			p, err = renewCert(ctx, h, n, o, ca)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plan = append(plan, p)
	}
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	var res Result
	restart := map[string]bool{}
	for _, p := range plan {
		for _, f := range p.files {
			if err := h.WriteFile(ctx, f.Path, f.Data, f.Mode); err != nil {
				return res, fmt.Errorf("renew %s on %s: %w (run the renewal again)", p.name, h.Name(), err)
			}
		}
		res.Renewed = append(res.Renewed, p.name)
		if c := usedBy[p.name]; c != "" {
			restart[c] = true
		}
	}
	for _, c := range Components {
		if restart[c] {
			res.Restart = append(res.Restart, c)
		}
	}
	return res, nil
}

func renewCert(ctx context.Context, h host.Host, name string, o Options, ca func(string) (*certs.CA, error)) (pending, error) {
	c, _ := certs.Lookup(name)
	certPath := path.Join(layout.PKIDir, c.CertFile())
	keyPath := path.Join(layout.PKIDir, c.KeyFile())
	data, err := h.ReadFile(ctx, certPath)
	if err != nil {
		return pending{}, fmt.Errorf("renew %s on %s: %w", name, h.Name(), err)
	}
	old, err := certs.ParseCert(data)
	if err != nil {
		return pending{}, fmt.Errorf("renew %s: %s on %s: %w", name, certPath, h.Name(), err)
	}
	signer, err := ca(caBase(c.CA))
	if err != nil {
		return pending{}, err
	}
	req := requestFrom(old, o)
	if name == certs.APIServerName {
		for _, s := range o.APIServerExtraSANs {
			if ip := net.ParseIP(s); ip != nil {
				if !slices.ContainsFunc(req.AltNames.IPs, ip.Equal) {
					req.AltNames.IPs = append(req.AltNames.IPs, ip)
				}
			} else if !slices.Contains(req.AltNames.DNSNames, s) {
				req.AltNames.DNSNames = append(req.AltNames.DNSNames, s)
			}
		}
	}
	kp, err := signer.Issue(req)
	if err != nil {
		return pending{}, fmt.Errorf("renew %s on %s: %w", name, h.Name(), err)
	}
	return pending{
		name: name,
		files: []host.File{
			{Path: keyPath, Data: kp.KeyPEM, Mode: layout.SecretMode},
			{Path: certPath, Data: kp.CertPEM, Mode: layout.PublicMode},
		},
	}, nil
}

func renewKubeconfig(ctx context.Context, h host.Host, name string, o Options, ca func(string) (*certs.CA, error)) (pending, error) {
	file := path.Join(layout.KubernetesDir, name)
	data, err := h.ReadFile(ctx, file)
	if err != nil {
		return pending{}, fmt.Errorf("renew %s on %s: %w", name, h.Name(), err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return pending{}, fmt.Errorf("renew %s on %s: %w", name, h.Name(), err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil || cfg.AuthInfos[kctx.AuthInfo] == nil || len(cfg.AuthInfos[kctx.AuthInfo].ClientCertificateData) == 0 {
		return pending{}, fmt.Errorf("renew %s on %s: its current context has no embedded client certificate", name, h.Name())
	}
	user := cfg.AuthInfos[kctx.AuthInfo]
	old, err := certs.ParseCert(user.ClientCertificateData)
	if err != nil {
		return pending{}, fmt.Errorf("renew %s on %s: %w", name, h.Name(), err)
	}
	signer, err := ca("ca")
	if err != nil {
		return pending{}, err
	}
	kp, err := signer.Issue(requestFrom(old, o))
	if err != nil {
		return pending{}, fmt.Errorf("renew %s on %s: %w", name, h.Name(), err)
	}
	user.ClientCertificateData, user.ClientKeyData = kp.CertPEM, kp.KeyPEM
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return pending{}, err
	}
	return pending{name: name, files: []host.File{{Path: file, Data: out, Mode: kubeconfig.Mode}}}, nil
}

// caBase is the CA's file base name for a certs.List CA name.
func caBase(caName string) string {
	for _, c := range certs.List() {
		if c.Name == caName {
			return c.BaseName
		}
	}
	return caName
}

// requestFrom asks for a certificate like old: subject, usages, SANs and
// key kind.
func requestFrom(old *x509.Certificate, o Options) certs.Request {
	alg := certs.AlgorithmRSA2048
	if _, ok := old.PublicKey.(*ecdsa.PublicKey); ok {
		alg = certs.AlgorithmECDSAP256
	}
	var usages []x509.ExtKeyUsage
	for _, u := range old.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageClientAuth {
			usages = append(usages, u)
		}
	}
	sort.Slice(usages, func(i, j int) bool { return usages[i] < usages[j] })
	org := append([]string(nil), old.Subject.Organization...)
	return certs.Request{
		CommonName:   old.Subject.CommonName,
		Organization: org,
		Usages:       usages,
		AltNames:     certs.AltNames{DNSNames: append([]string(nil), old.DNSNames...), IPs: append([]net.IP(nil), old.IPAddresses...)},
		Algorithm:    alg,
		Validity:     o.Validity,
		Now:          o.Now,
	}
}
