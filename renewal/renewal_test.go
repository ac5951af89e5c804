package renewal

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/kubeconfig"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/providers/local"
)

// A control plane's PKI made 1 hour long is renewed for a year: every leaf
// and kubeconfig gets a new key and a later expiry with the same subject
// and SANs (the API server's plus the extra ones), signed by the same CA;
// the CAs and sa.key stay; the static pods to restart are named in order.
func TestRenewAll(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	h := local.Rooted(root)
	then := time.Now().Add(-30 * time.Minute)
	spec := certs.Spec{NodeName: "cp1", AdvertiseAddress: net.ParseIP("10.0.0.5"), ServiceSubnet: "10.96.0.0/12", Validity: time.Hour, Now: func() time.Time { return then }}
	if _, err := certs.Ensure(ctx, h, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeconfig.Ensure(ctx, h, kubeconfig.Spec{NodeName: "cp1", AdvertiseAddress: net.ParseIP("10.0.0.5"), Validity: time.Hour, Now: func() time.Time { return then }}); err != nil {
		t.Fatal(err)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	oldAPI, _ := certs.ParseCert(read(layout.PKIDir + "/apiserver.crt"))
	oldKey := read(layout.PKIDir + "/apiserver.key")
	caBefore, saBefore := read(layout.CACert), read(layout.PKIDir+"/sa.key")
	adminBefore := read(layout.AdminConf)

	now := time.Now()
	res, err := Renew(ctx, h, Options{Names: []string{All}, Validity: 365 * 24 * time.Hour, APIServerExtraSANs: []string{"api.example.com", "10.0.0.99"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Renewed, Names()) {
		t.Errorf("renewed %v, want %v", res.Renewed, Names())
	}
	if !slices.Equal(res.Restart, Components) {
		t.Errorf("restart %v, want %v", res.Restart, Components)
	}
	api, _ := certs.ParseCert(read(layout.PKIDir + "/apiserver.crt"))
	if api.NotAfter.Sub(now) < 364*24*time.Hour || api.Subject.CommonName != oldAPI.Subject.CommonName {
		t.Errorf("apiserver: %s until %s", api.Subject, api.NotAfter)
	}
	if string(read(layout.PKIDir+"/apiserver.key")) == string(oldKey) {
		t.Error("the API server's key was not renewed")
	}
	for _, n := range oldAPI.DNSNames {
		if !slices.Contains(api.DNSNames, n) {
			t.Errorf("SAN %s lost", n)
		}
	}
	if !slices.Contains(api.DNSNames, "api.example.com") || !slices.ContainsFunc(api.IPAddresses, net.ParseIP("10.0.0.99").Equal) {
		t.Errorf("extra SANs missing: %v %v", api.DNSNames, api.IPAddresses)
	}
	if _, err := certs.ParseKeyPair(read(layout.PKIDir+"/apiserver.crt"), read(layout.PKIDir+"/apiserver.key")); err != nil {
		t.Errorf("the renewed pair does not match: %v", err)
	}
	ca, err := certs.LoadCA(ctx, h, layout.PKIDir, "ca", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(api, now); err != nil {
		t.Errorf("the renewed API server certificate: %v", err)
	}
	if string(read(layout.CACert)) != string(caBefore) || string(read(layout.PKIDir+"/sa.key")) != string(saBefore) {
		t.Error("a CA or the service-account key changed")
	}
	admin, err := clientcmd.Load(read(layout.AdminConf))
	if err != nil {
		t.Fatal(err)
	}
	user := admin.AuthInfos[admin.Contexts[admin.CurrentContext].AuthInfo]
	ac, _ := certs.ParseCert(user.ClientCertificateData)
	if ac.NotAfter.Sub(now) < 364*24*time.Hour || ac.Subject.CommonName != "kubernetes-admin" || !slices.Equal(ac.Subject.Organization, []string{certs.ClusterAdminsGroup}) {
		t.Errorf("admin.conf: %s until %s", ac.Subject, ac.NotAfter)
	}
	if string(read(layout.AdminConf)) == string(adminBefore) {
		t.Error("admin.conf unchanged")
	}
	if fi, _ := os.Stat(filepath.Join(root, layout.AdminConf)); fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.conf mode %v", fi.Mode())
	}

	// One name: only it, and only its component.
	res, err = Renew(ctx, h, Options{Names: []string{"scheduler.conf"}, Validity: time.Hour, Now: now})
	if err != nil || !slices.Equal(res.Renewed, []string{"scheduler.conf"}) || !slices.Equal(res.Restart, []string{Scheduler}) {
		t.Errorf("scheduler.conf: %+v, %v", res, err)
	}
}

// Nothing is written when one certificate cannot be renewed; an unknown
// name is refused with the list.
func TestRenewFailsWhole(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	h := local.Rooted(root)
	if _, err := certs.Ensure(ctx, h, certs.Spec{NodeName: "cp1", AdvertiseAddress: net.ParseIP("10.0.0.5"), ServiceSubnet: "10.96.0.0/12"}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(root, layout.PKIDir, "apiserver.crt"))
	// No kubeconfigs: admin.conf cannot be renewed.
	if _, err := Renew(ctx, h, Options{Names: []string{"apiserver", "admin.conf"}, Validity: time.Hour, Now: time.Now()}); err == nil || !strings.Contains(err.Error(), "admin.conf") {
		t.Fatalf("want an error naming admin.conf, got %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(root, layout.PKIDir, "apiserver.crt")); string(after) != string(before) {
		t.Error("the API server certificate changed though the renewal failed")
	}
	if _, err := Renew(ctx, h, Options{Names: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "apiserver-etcd-client") {
		t.Errorf("unknown name: %v", err)
	}
}
