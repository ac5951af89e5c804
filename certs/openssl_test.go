package certs

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
}

// TestOpenSSLVerifiesPKI writes the PKI to a directory and checks every
// chain and the API server's SANs with the openssl command.
func TestOpenSSLVerifiesPKI(t *testing.T) {
	needOpenSSL(t)
	for _, alg := range []string{AlgorithmECDSAP256, AlgorithmRSA2048} {
		t.Run(alg, func(t *testing.T) {
			h := newMemHost()
			s := testSpec()
			s.Algorithm = alg
			// openssl checks validity against the real clock.
			s.Now = nil
			if _, err := Ensure(t.Context(), h, s); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			h.dump(t, pki, dir)
			for ca, leaves := range map[string][]string{
				"ca":             {"apiserver", "apiserver-kubelet-client"},
				"front-proxy-ca": {"front-proxy-client"},
				"etcd/ca":        {"etcd/server", "etcd/peer", "etcd/healthcheck-client", "apiserver-etcd-client"},
			} {
				for _, leaf := range leaves {
					crt := filepath.Join(dir, leaf+".crt")
					out := openssl(t, "verify", "-CAfile", filepath.Join(dir, ca+".crt"), crt)
					if strings.TrimSpace(out) != crt+": OK" {
						t.Errorf("openssl verify %s: %s", leaf, out)
					}
				}
			}
			// A chain to the wrong CA must fail, or the checks above prove nothing.
			cmd := exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, "ca.crt"), filepath.Join(dir, "etcd/server.crt"))
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Errorf("openssl verified etcd/server.crt against ca.crt: %s", out)
			}

			sans := openssl(t, "x509", "-noout", "-ext", "subjectAltName", "-in", filepath.Join(dir, "apiserver.crt"))
			for _, want := range []string{"DNS:kubernetes.default.svc.cluster.local", "DNS:cp-1", "DNS:k8s.example.com",
				"DNS:api.example.com", "IP Address:10.96.0.1", "IP Address:192.168.10.5", "IP Address:203.0.113.7"} {
				if !strings.Contains(sans, want+",") && !strings.HasSuffix(strings.TrimSpace(sans), want) {
					t.Errorf("apiserver.crt SANs lack %s:\n%s", want, sans)
				}
			}
			etcd := openssl(t, "x509", "-noout", "-ext", "subjectAltName", "-in", filepath.Join(dir, "etcd/server.crt"))
			if !strings.Contains(etcd, "DNS:cp-1, DNS:localhost, IP Address:192.168.10.5, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1") {
				t.Errorf("etcd/server.crt SANs:\n%s", etcd)
			}
			// The keys are what openssl expects of the algorithm.
			text := openssl(t, "pkey", "-noout", "-text", "-in", filepath.Join(dir, "apiserver.key"))
			wantKey := "ASN1 OID: prime256v1"
			if alg == AlgorithmRSA2048 {
				wantKey = "Private-Key: (2048 bit, 2 primes)"
			}
			if !strings.Contains(text, wantKey) {
				t.Errorf("apiserver.key is not %s:\n%.200s", alg, text)
			}
			sa := openssl(t, "pkey", "-pubin", "-noout", "-text", "-in", filepath.Join(dir, "sa.pub"))
			if !strings.Contains(sa, "Public-Key: (2048 bit)") {
				t.Errorf("sa.pub:\n%.200s", sa)
			}
		})
	}
}

// TestCAHashMatchesOpenSSL compares CAHash with kubeadm's documented
// pipeline: openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum.
func TestCAHashMatchesOpenSSL(t *testing.T) {
	needOpenSSL(t)
	for _, alg := range []string{AlgorithmECDSAP256, AlgorithmRSA2048} {
		h := newMemHost()
		s := testSpec()
		s.Algorithm = alg
		if _, err := Ensure(t.Context(), h, s); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		h.dump(t, pki, dir)
		out, err := exec.Command("sh", "-c", "openssl x509 -pubkey -noout -in "+filepath.Join(dir, "ca.crt")+
			" | openssl pkey -pubin -outform der | sha256sum").CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		want := "sha256:" + strings.Fields(string(out))[0]
		got, err := CAHash(h.get(t, pki+"/ca.crt").data)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: CAHash = %s, openssl says %s", alg, got, want)
		}
	}
	if _, err := CAHash([]byte("not PEM")); err == nil {
		t.Error("CAHash accepted garbage")
	}
}
