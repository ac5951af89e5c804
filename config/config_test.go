package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func parseValid(t *testing.T, doc string) *Cluster {
	t.Helper()
	c, err := Parse("kforge.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := c.Validate("kforge.yaml"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return c
}

// same compares two clusters, ignoring where hosts sat in a file and the
// difference between an empty and a missing list.
func same(a, b *Cluster) bool {
	norm := func(c *Cluster) Cluster {
		n := *c
		n.Hosts = append([]Host(nil), c.Hosts...)
		for i := range n.Hosts {
			n.Hosts[i].line = 0
		}
		if len(n.Certs.ExtraSANs) == 0 {
			n.Certs.ExtraSANs = nil
		}
		for _, comp := range []*Component{&n.APIServer, &n.ControllerManager, &n.Scheduler, &n.Etcd, &n.Kubelet} {
			if len(comp.ExtraArgs) == 0 {
				comp.ExtraArgs = nil
			}
		}
		n.extraArgLines = nil
		n.LoadBalancer.line = 0
		if len(n.Registries) == 0 {
			n.Registries = nil
		}
		if len(n.Artifacts.TrustedKeys) == 0 {
			n.Artifacts.TrustedKeys = nil
		}
		return n
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func TestPrintedDefaultsAreCompleteAndValid(t *testing.T) {
	c := parseValid(t, string(DefaultsYAML()))
	if !same(c, Default()) {
		t.Fatalf("defaults.yaml decodes to\n%#v\nbut Default() is\n%#v", c, Default())
	}
	// Every field of the schema appears in the printed file (commented
	// host fields included), so users can discover all of them.
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if !strings.Contains(string(DefaultsYAML()), name+":") {
				t.Errorf("print-defaults does not mention field %s (%s.%s)", name, ty.Name(), f.Name)
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft)
			}
		}
	}
	walk(reflect.TypeOf(Cluster{}))
}

func TestDefaults(t *testing.T) {
	c := Default()
	if c.KubernetesVersion != "v1.37.2" || c.Runtime != RuntimeBundle || c.Networking.PodSubnet != "10.244.0.0/16" ||
		c.Networking.ServiceSubnet != "10.96.0.0/12" || c.Networking.DNSDomain != "cluster.local" ||
		c.Certs.Algorithm != AlgorithmECDSAP256 || c.CNI.Plugin != "bridge" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if err := c.Validate("(defaults)"); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownFieldNamesFileAndLine(t *testing.T) {
	doc := `apiVersion: kforge.dev/v1alpha1
kind: Cluster
networking:
  podSubnet: 10.244.0.0/16
  podSubent: 10.245.0.0/16
`
	_, err := Parse("/tmp/kforge.yaml", []byte(doc))
	if err == nil {
		t.Fatal("unknown field accepted")
	}
	if !strings.Contains(err.Error(), `/tmp/kforge.yaml:5: unknown field "podSubent" in Networking`) {
		t.Fatalf("error does not name file, line and field: %v", err)
	}
}

func TestMistypedFieldNamesLine(t *testing.T) {
	doc := "apiVersion: kforge.dev/v1alpha1\nkind: Cluster\nhosts:\n- address: 10.0.0.1\n  role: control-plane\n  ssh:\n    port: twenty-two\n"
	_, err := Parse("c.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "c.yaml:7:") || !strings.Contains(err.Error(), "twenty-two") {
		t.Fatalf("want an error at c.yaml:7 naming the value, got %v", err)
	}
}

func TestSecondDocumentRejected(t *testing.T) {
	_, err := Parse("c.yaml", []byte("apiVersion: kforge.dev/v1alpha1\nkind: Cluster\n---\nkind: Cluster\n"))
	if err == nil || !strings.Contains(err.Error(), "second YAML document") {
		t.Fatalf("got %v", err)
	}
}

func TestValidationErrors(t *testing.T) {
	base := "apiVersion: kforge.dev/v1alpha1\nkind: Cluster\n"
	cases := []struct {
		name, doc, want string
	}{
		{"overlap", base + "networking: {podSubnet: 10.96.0.0/16, serviceSubnet: 10.96.0.0/12}\nhosts: [{local: true, role: control-plane}]\n",
			"overlaps networking.serviceSubnet"},
		{"host bits", base + "networking: {podSubnet: 10.244.1.0/16}\nhosts: [{local: true, role: control-plane}]\n",
			"did you mean 10.244.0.0/16"},
		{"no control plane", base + "hosts:\n- {address: 10.0.0.2, role: worker}\n", "no host has role control-plane"},
		{"duplicate", base + "hosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: 10.0.0.2, role: worker}\n- {address: 10.0.0.2, role: worker}\n",
			"kforge.yaml:6: hosts[2] (10.0.0.2): address 10.0.0.2 is listed twice (also hosts[1])"},
		{"bad version", base + "kubernetesVersion: 1.35\nhosts: [{local: true, role: control-plane}]\n", `unsupported Kubernetes version "1.35"; kforge supports v1.35.4, v1.36.3, v1.37.2`},
		{"old version", base + "kubernetesVersion: v1.34.0\nhosts: [{local: true, role: control-plane}]\n", `kforge.yaml: kubernetesVersion: unsupported Kubernetes version "v1.34.0"; kforge supports v1.35.4, v1.36.3, v1.37.2`},
		{"runtime", base + "runtime: apt\nhosts: [{local: true, role: control-plane}]\n", `runtime "apt": use bundle`},
		{"role", base + "hosts:\n- {address: 10.0.0.1, role: master}\n", `role "master": use control-plane or worker`},
		{"algorithm", base + "certs: {algorithm: DSA}\nhosts: [{local: true, role: control-plane}]\n", `certs.algorithm "DSA"`},
		{"validity", base + "certs: {caValidity: 24h, validity: 48h}\nhosts: [{local: true, role: control-plane}]\n", "outlasts certs.caValidity"},
		{"bridge multi", base + "cni: {plugin: bridge}\nhosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: 10.0.0.2, role: worker}\n", "use kube-router for 2 hosts"},
		{"secret", base + "hosts:\n- address: 10.0.0.1\n  role: control-plane\n  ssh: {passwordFrom: hunter2}\n", `ssh.passwordFrom "hunter2": use env:NAME or file:PATH`},
		{"jump", base + "hosts:\n- address: 10.0.0.1\n  role: control-plane\n  ssh: {jumpHost: 'bastion:99999'}\n", "ssh.jumpHost"},
		{"two cps", base + "hosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: 10.0.0.2, role: control-plane}\n", "2 control-plane hosts; etcd keeps working while a majority (2 of 2) of them does, so an even number tolerates no more losses than one fewer: use 1 or 3"},
		{"four cps", base + "hosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: 10.0.0.2, role: control-plane}\n- {address: 10.0.0.3, role: control-plane}\n- {address: 10.0.0.4, role: control-plane}\n", "use 3 or 5"},
		{"ha local cp", base + "hosts:\n- {local: true, role: control-plane}\n- {address: 10.0.0.2, role: control-plane}\n- {address: 10.0.0.3, role: control-plane}\n", "a cluster with 3 control planes needs each one's address (or nodeIP)"},
		{"vip one cp", base + "loadBalancer: {virtualIP: 10.0.0.100}\nhosts:\n- {address: 10.0.0.1, role: control-plane}\n", "kforge.yaml:3: loadBalancer.virtualIP needs 3 or more control-plane hosts"},
		{"vip not ip", base + "loadBalancer: {virtualIP: vip.example}\nhosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: 10.0.0.2, role: control-plane}\n- {address: 10.0.0.3, role: control-plane}\n", `loadBalancer.virtualIP "vip.example" is not an IPv4 address`},
		{"vip is a host", base + "loadBalancer: {virtualIP: 10.0.0.2}\nhosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: 10.0.0.2, role: control-plane}\n- {address: 10.0.0.3, role: control-plane}\n", "loadBalancer.virtualIP 10.0.0.2 is a host's address"},
		{"vip and endpoint", base + "controlPlaneEndpoint: lb.example:6443\nloadBalancer: {virtualIP: 10.0.0.100}\nhosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: 10.0.0.2, role: control-plane}\n- {address: 10.0.0.3, role: control-plane}\n", "controlPlaneEndpoint lb.example:6443 is not loadBalancer.virtualIP 10.0.0.100"},
		{"no address", base + "hosts:\n- {role: control-plane}\n", "address is empty"},
		{"endpoint", base + "controlPlaneEndpoint: 'bad host:1'\nhosts: [{local: true, role: control-plane}]\n", "controlPlaneEndpoint"},
		{"small svc", base + "networking: {serviceSubnet: 10.96.0.0/30}\nhosts: [{local: true, role: control-plane}]\n", "too small"},
		{"big svc", base + "networking: {serviceSubnet: 10.0.0.0/8}\nhosts: [{local: true, role: control-plane}]\n", "2^20"},
		{"not an ip", base + "hosts:\n- {address: 'not an ip!!', role: control-plane}\n", `address "not an ip!!": neither an IP address nor a DNS name`},
		{"leading zero", base + "hosts:\n- {address: 10.0.0.01, role: control-plane}\n", `address "10.0.0.01": not a valid IP address`},
		{"mapped duplicate", base + "hosts:\n- {address: 10.0.0.1, role: control-plane}\n- {address: '::ffff:10.0.0.1', role: worker}\n", "is listed twice (also hosts[0])"},
		{"node ip in pods", base + "hosts:\n- {address: 10.0.0.1, nodeIP: 10.244.3.4, role: control-plane}\n", "the node's address 10.244.3.4 is inside networking.podSubnet 10.244.0.0/16"},
		{"address in services", base + "hosts:\n- {address: 10.96.0.5, role: control-plane}\n", "inside networking.serviceSubnet 10.96.0.0/12"},
		{"validity 1ns", base + "certs: {validity: 1ns}\nhosts: [{local: true, role: control-plane}]\n", `certs.validity: "1ns" is outside 1m0s to`},
		{"validity 292y", base + "certs: {caValidity: 2559600h}\nhosts: [{local: true, role: control-plane}]\n", `certs.caValidity: "2559600h" is outside`},
		{"version 1.99", base + "kubernetesVersion: v1.99.0\nhosts: [{local: true, role: control-plane}]\n", `unsupported Kubernetes version "v1.99.0"`},
		{"extra arg kforge sets", base + "apiServer:\n  extraArgs:\n    audit-log-maxage: '7'\n    etcd-servers: https://10.0.0.9:2379\nhosts: [{local: true, role: control-plane}]\n",
			"kforge.yaml:6: apiServer.extraArgs.etcd-servers: kforge sets --etcd-servers itself"},
		{"extra arg dashes", base + "scheduler: {extraArgs: {--v: '4'}}\nhosts: [{local: true, role: control-plane}]\n", "kforge.yaml:3: scheduler.extraArgs.--v: write the flag's name without dashes (v)"},
		{"kubelet flag kforge sets", base + "kubelet: {extraArgs: {node-ip: 10.0.0.9}}\nhosts: [{local: true, role: control-plane}]\n", "kubelet.extraArgs.node-ip: kforge sets --node-ip itself"},
		{"kubelet value", base + "kubelet: {extraArgs: {max-pods: '1 0'}}\nhosts: [{local: true, role: control-plane}]\n", "the kubelet's flags file cannot carry"},
		{"label", base + "hosts:\n- {address: 10.0.0.1, role: control-plane}\n- address: 10.0.0.2\n  role: worker\n  labels: {'bad key!': x}\n",
			"kforge.yaml:5: hosts[1] (10.0.0.2): label bad key!=x: name part must consist of"},
		{"taint effect", base + "hosts:\n- {address: 10.0.0.1, role: control-plane, taints: ['gpu=yes:Sometimes']}\n",
			`kforge.yaml:4: hosts[0] (10.0.0.1): taint "gpu=yes:Sometimes": effect "Sometimes": use NoSchedule, PreferNoSchedule or NoExecute`},
		{"taint form", base + "hosts:\n- {address: 10.0.0.1, role: control-plane, taints: [gpu]}\n", `taint "gpu": write it KEY[=VALUE]:EFFECT`},
		{"registry name", base + "hosts: [{local: true, role: control-plane}]\nregistries:\n  https://docker.io: {mirrors: [https://m.example]}\n",
			`kforge.yaml:5: registries.https://docker.io: "https://docker.io" is not a registry host[:port]`},
		{"mirror url", base + "hosts: [{local: true, role: control-plane}]\nregistries:\n  docker.io: {mirrors: [m.example:5000]}\n",
			`kforge.yaml:5: registries.docker.io: mirror "m.example:5000": give a URL like https://mirror.example:5000`},
		{"registry password", base + "hosts: [{local: true, role: control-plane}]\nregistries:\n  docker.io:\n    auth: {usernameFrom: env:U, passwordFrom: hunter2}\n",
			`kforge.yaml:5: registries.docker.io: auth.passwordFrom "hunter2": use env:NAME or file:PATH; credentials never go in the cluster file`},
		{"registry ca", base + "hosts: [{local: true, role: control-plane}]\nregistries:\n  r.example: {ca: \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"}\n",
			`registries.r.example: ca: it does not parse as PEM certificates`},
		{"image repository", base + "hosts: [{local: true, role: control-plane}]\nimageRepository: harbor.example/k8s:v1\n",
			`imageRepository "harbor.example/k8s:v1": give a repository prefix without a tag`},
		{"etcd data dir", base + "etcd: {extraArgs: {data-dir: /srv/etcd}}\nhosts: [{local: true, role: control-plane}]\n", "etcd.extraArgs.data-dir: kforge sets --data-dir itself"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("kforge.yaml", []byte(tc.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = c.Validate("kforge.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// Flags kforge does not set, and the overridable ones it does, pass.
func TestExtraArgsAccepted(t *testing.T) {
	doc := "apiVersion: kforge.dev/v1alpha1\nkind: Cluster\nhosts: [{local: true, role: control-plane}]\n" +
		"apiServer: {extraArgs: {audit-log-maxage: '7', event-ttl: 2h}}\ncontrollerManager: {extraArgs: {bind-address: 0.0.0.0}}\n" +
		"scheduler: {extraArgs: {v: '2'}}\netcd: {extraArgs: {quota-backend-bytes: '8589934592'}}\nkubelet: {extraArgs: {max-pods: '200'}}\n"
	c, err := Parse("kforge.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate("kforge.yaml"); err != nil {
		t.Fatal(err)
	}
	if c.ExtraArgs("kubelet")["max-pods"] != "200" || c.ExtraArgs("apiServer")["event-ttl"] != "2h" {
		t.Errorf("extraArgs not read: %+v %+v", c.Kubelet, c.APIServer)
	}
}

func TestMultiHostDefaults(t *testing.T) {
	c := parseValid(t, `apiVersion: kforge.dev/v1alpha1
kind: Cluster
hosts:
- {address: 10.0.0.1, role: control-plane}
- {address: 10.0.0.2, role: worker, ssh: {user: kforge, port: 2222}}
`)
	if c.CNI.Plugin != "kube-router" {
		t.Errorf("cni for two hosts = %q, want kube-router", c.CNI.Plugin)
	}
	if c.Hosts[0].SSH.User != "root" || c.Hosts[0].SSH.Port != 22 || c.Hosts[1].SSH.Port != 2222 {
		t.Errorf("ssh defaults wrong: %+v", c.Hosts)
	}
	if c.Hosts[1].Line() != 5 {
		t.Errorf("hosts[1] line = %d, want 5", c.Hosts[1].Line())
	}
	cp, ok := c.ControlPlane()
	if !ok || cp.Address != "10.0.0.1" || len(c.Workers()) != 1 {
		t.Errorf("ControlPlane/Workers wrong")
	}
}

func TestServiceIP(t *testing.T) {
	n := Networking{ServiceSubnet: "10.96.0.0/12"}
	for i, want := range map[int]string{1: "10.96.0.1", 10: "10.96.0.10"} {
		ip, err := n.ServiceIP(i)
		if err != nil || ip.String() != want {
			t.Errorf("ServiceIP(%d) = %v, %v; want %s", i, ip, err, want)
		}
	}
	if _, err := (Networking{ServiceSubnet: "10.0.0.0/30"}).ServiceIP(10); err == nil {
		t.Error("ServiceIP beyond the subnet accepted")
	}
	ip, err := (Networking{ServiceSubnet: "fd00:10::/108"}).ServiceIP(10)
	if err != nil || ip.String() != "fd00:10::a" {
		t.Errorf("IPv6 ServiceIP = %v, %v", ip, err)
	}
}

func TestSecret(t *testing.T) {
	t.Setenv("KFORGE_TEST_SECRET", "s3cret")
	if v, err := Secret("env:KFORGE_TEST_SECRET"); err != nil || v != "s3cret" {
		t.Errorf("env secret = %q, %v", v, err)
	}
	f := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(f, []byte("filepw\n"), 0o600)
	if v, err := Secret("file:" + f); err != nil || v != "filepw" {
		t.Errorf("file secret = %q, %v", v, err)
	}
	if _, err := Secret("env:KFORGE_TEST_UNSET_XYZ"); err == nil || !strings.Contains(err.Error(), "not set") {
		t.Errorf("unset env secret: %v", err)
	}
}

func TestLoadMissingFileSaysWhatToDo(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "print-defaults") {
		t.Fatalf("got %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	c := Default()
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back := parseValid(t, string(out))
	if !same(c, back) {
		t.Fatalf("round trip changed the config:\n%s", out)
	}
}

func TestTypeErrorsNameTheFieldAndNonUTF8TheLine(t *testing.T) {
	_, err := Parse("kforge.yaml", []byte("apiVersion: kforge.dev/v1alpha1\nkind: Cluster\nhosts:\n- address: 10.0.0.1\n  role: control-plane\n  ssh: {port: abc}\n"))
	if err == nil || !strings.Contains(err.Error(), `kforge.yaml:6: hosts[0].ssh.port: "abc" is a string but this field needs an integer`) {
		t.Errorf("type error: %v", err)
	}
	_, err = Parse("kforge.yaml", []byte("apiVersion: kforge.dev/v1alpha1\nkind: Cluster\nname: \"\xff\"\n"))
	if err == nil || !strings.Contains(err.Error(), "kforge.yaml:3:8: byte 0xff is not UTF-8 text") {
		t.Errorf("non-UTF-8: %v", err)
	}
}

// TestAddonSwitches: the add-ons are on unless the file turns them off.
func TestAddonSwitches(t *testing.T) {
	c, err := Parse("kforge.yaml", []byte("apiVersion: kforge.dev/v1alpha1\nkind: Cluster\naddons: {storage: false}\nhosts: [{local: true, role: control-plane}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if Enabled(c.Addons.Storage) || !Enabled(c.Addons.MetricsServer) {
		t.Errorf("addons: {storage: false} gives storage %v, metricsServer %v", Enabled(c.Addons.Storage), Enabled(c.Addons.MetricsServer))
	}
}

func TestRegistryCAFileIsRead(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err := os.WriteFile(ca, []byte(pemText), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "kforge.yaml")
	doc := "apiVersion: kforge.dev/v1alpha1\nkind: Cluster\nhosts: [{local: true, role: control-plane}]\nregistries:\n  r.example:5000:\n    ca: " + ca + "\n    auth: {usernameFrom: env:KFORGE_TEST_U, passwordFrom: file:" + filepath.Join(dir, "pw") + "}\n  docker.io: {mirrors: [https://r.example:5000]}\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Registries["r.example:5000"].CA; got != pemText {
		t.Fatalf("ca = %q, want the file's PEM", got)
	}
	if got := c.Registries["r.example:5000"].Line(); got != 5 {
		t.Fatalf("line = %d, want 5", got)
	}
	if _, _, err := c.Registries["r.example:5000"].Auth.Credentials(); err == nil || !strings.Contains(err.Error(), "KFORGE_TEST_U is not set") {
		t.Fatalf("unset env: got %v", err)
	}
	t.Setenv("KFORGE_TEST_U", "alice")
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, p, err := c.Registries["r.example:5000"].Auth.Credentials()
	if err != nil || u != "alice" || p != "s3cret" {
		t.Fatalf("credentials = %q %q %v", u, p, err)
	}
	if err := os.Remove(ca); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(file); err == nil || !strings.Contains(err.Error(), "kforge.yaml:5: registries.r.example:5000: ca:") {
		t.Fatalf("missing CA file: got %v", err)
	}
}

// One host gets the short kube-proxy sync floor; several keep upstream's.
func TestProxyMinSyncPeriod(t *testing.T) {
	for _, tc := range []struct {
		hosts int
		want  string
	}{{0, SingleHostProxyMinSyncPeriod}, {1, SingleHostProxyMinSyncPeriod}, {2, ""}, {4, ""}} {
		c := &Cluster{Hosts: make([]Host, tc.hosts)}
		if got := c.ProxyMinSyncPeriod(); got != tc.want {
			t.Errorf("%d hosts: %q, want %q", tc.hosts, got, tc.want)
		}
	}
}
