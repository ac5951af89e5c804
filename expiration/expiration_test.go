package expiration

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/kubeconfig"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/providers/local"
)

// A control plane's PKI and kubeconfigs, made as init makes them, are all
// listed with their real expiry; a worker's lone ca.crt too; a damaged file
// is an error naming it.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	h := local.Rooted(root)
	now := time.Now()
	validity := 72 * time.Hour
	if _, err := certs.Ensure(ctx, h, certs.Spec{NodeName: "cp1", AdvertiseAddress: net.ParseIP("10.0.0.5"), ServiceSubnet: "10.96.0.0/12", Validity: validity, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeconfig.Ensure(ctx, h, kubeconfig.Spec{NodeName: "cp1", AdvertiseAddress: net.ParseIP("10.0.0.5"), Validity: validity, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	list, err := Check(ctx, h, now)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]Cert{}
	for _, c := range list {
		names = append(names, c.Name)
		byName[c.Name] = c
	}
	want := "ca front-proxy-ca etcd-ca apiserver apiserver-kubelet-client front-proxy-client etcd-server etcd-peer etcd-healthcheck-client apiserver-etcd-client admin.conf super-admin.conf controller-manager.conf scheduler.conf kubelet.conf"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("listed\n%s\nwant\n%s", got, want)
	}
	if c := byName["apiserver"]; c.CA || c.SignedBy != "kubernetes" || c.RenewedBy != ByKforge || c.Residual > validity || c.Residual < validity-time.Hour {
		t.Errorf("apiserver: %+v", c)
	}
	if c := byName["ca"]; !c.CA || c.Residual < 365*24*time.Hour {
		t.Errorf("ca: %+v", c)
	}
	if got := Expiring(list, 30*24*time.Hour); len(got) != len(list)-3 {
		t.Errorf("%d expire within 30 days, want all but the 3 CAs", len(got))
	}
	if r := HumanDuration(byName["apiserver"].Residual); r != "2d" && r != "3d" {
		t.Errorf("residual %s", HumanDuration(byName["apiserver"].Residual))
	}

	if err := os.WriteFile(filepath.Join(root, layout.PKIDir, "apiserver.crt"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, h, now); err == nil || !strings.Contains(err.Error(), layout.PKIDir+"/apiserver.crt") {
		t.Errorf("damaged certificate: %v", err)
	}

	worker := t.TempDir()
	os.MkdirAll(filepath.Join(worker, layout.PKIDir), 0o755)
	ca, _ := os.ReadFile(filepath.Join(root, layout.CACert))
	os.WriteFile(filepath.Join(worker, layout.CACert), ca, 0o644)
	list, err = Check(ctx, local.Rooted(worker), now)
	if err != nil || len(list) != 1 || list[0].Name != "ca" {
		t.Errorf("worker: %+v, %v", list, err)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Hour: "expired", 30 * time.Minute: "30m", 5 * time.Hour: "5h",
		364 * 24 * time.Hour: "364d", 3650 * 24 * time.Hour: "10y",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("%s: %s, want %s", d, got, want)
		}
	}
}
