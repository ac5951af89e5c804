package images

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestForV1354(t *testing.T) {
	s, err := For("v1.35.4")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"registry.k8s.io/kube-apiserver:v1.35.4",
		"registry.k8s.io/kube-controller-manager:v1.35.4",
		"registry.k8s.io/kube-scheduler:v1.35.4",
		"registry.k8s.io/kube-proxy:v1.35.4",
		"registry.k8s.io/etcd:3.6.6-0",
		"registry.k8s.io/coredns/coredns:v1.13.1",
		"registry.k8s.io/pause:3.10.1",
		"docker.io/cloudnativelabs/kube-router:v2.1.0",
		"registry.k8s.io/metrics-server/metrics-server:v0.8.0",
		"docker.io/rancher/local-path-provisioner:v0.0.30",
		"docker.io/library/haproxy:2.6",
		"kforge.dev/keepalived:2.2",
	}
	got := s.All()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("For(v1.35.4).All() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s.Versions.CNIPlugins != "v1.9.1" {
		t.Errorf("CNI plugins %q, want v1.9.1", s.Versions.CNIPlugins)
	}
}

func TestForAcceptsVersionWithoutV(t *testing.T) {
	a, err := For("1.35.4")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := For("v1.35.4")
	if a != b {
		t.Errorf("For(1.35.4) = %+v, For(v1.35.4) = %+v", a, b)
	}
}

func TestForUnsupportedListsSupported(t *testing.T) {
	for _, v := range []string{"v1.99.0", "", "v1.35", "latest"} {
		_, err := For(v)
		if err == nil {
			t.Errorf("For(%q) succeeded, want an error", v)
			continue
		}
		for _, s := range Supported() {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("For(%q) error %q does not list supported version %s", v, err, s)
			}
		}
	}
}

func TestTableIsWellFormed(t *testing.T) {
	semver := regexp.MustCompile(`^v\d+\.\d+\.\d+$`)
	seen := map[string]bool{}
	for _, v := range supported {
		if seen[v.Kubernetes] {
			t.Errorf("Kubernetes %s listed twice", v.Kubernetes)
		}
		seen[v.Kubernetes] = true
		for name, s := range map[string]string{
			"Kubernetes": v.Kubernetes, "Etcd": v.Etcd, "CoreDNS": v.CoreDNS,
			"KubeRouter": v.KubeRouter, "CNIPlugins": v.CNIPlugins, "Pause": "v" + v.Pause,
			"MetricsServer": v.MetricsServer, "LocalPathProvisioner": v.LocalPathProvisioner,
		} {
			if !semver.MatchString(s) {
				t.Errorf("Kubernetes %s: %s version %q is not vX.Y.Z", v.Kubernetes, name, s)
			}
		}
	}
	if got := Default(); got != Supported()[len(Supported())-1] {
		t.Errorf("Default() = %s", got)
	}
}

// The image tags are only true if scripts/build-artifacts.sh builds those
// versions: its version table must be this package's, row for row, and its
// shared pins the same.
func TestBuildScriptPinsMatchTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "scripts", "build-artifacts.sh"))
	if err != nil {
		t.Fatal(err)
	}
	script := string(data)
	pins := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)_VERSION=(\S+)\s*$`).FindAllStringSubmatch(script, -1) {
		if _, dup := pins[m[1]]; dup {
			t.Errorf("%s_VERSION pinned twice in the script", m[1])
		}
		pins[m[1]] = strings.Trim(m[2], `"'`)
	}
	table := regexp.MustCompile(`(?s)\nVERSION_TABLE="\n(.*?)"\n`).FindStringSubmatch(script)
	if table == nil {
		t.Fatal("scripts/build-artifacts.sh has no VERSION_TABLE")
	}
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(table[1]), "\n") {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	var want []string
	for _, v := range supported {
		want = append(want, strings.Join([]string{v.Kubernetes, v.Etcd, v.CoreDNS, v.Pause}, " "))
		for key, pin := range map[string]string{
			"KUBE_ROUTER": v.KubeRouter, "CNI_PLUGINS": v.CNIPlugins,
			"METRICS_SERVER": v.MetricsServer, "LOCAL_PATH_PROVISIONER": v.LocalPathProvisioner,
			"CONTAINERD": v.Containerd, "RUNC": v.Runc, "CRICTL": v.Crictl,
		} {
			if got, ok := pins[key]; !ok {
				t.Errorf("scripts/build-artifacts.sh pins no %s_VERSION", key)
			} else if got != pin {
				t.Errorf("scripts/build-artifacts.sh pins %s_VERSION=%s, the table has %s for Kubernetes %s", key, got, pin, v.Kubernetes)
			}
		}
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("scripts/build-artifacts.sh VERSION_TABLE:\n%s\nimages.supported:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

func TestNewestThreeMinorsDefaultNewest(t *testing.T) {
	all := Supported()
	if len(all) != 3 || Default() != "v1.37.2" {
		t.Fatalf("Supported() = %v, Default() = %s; want three minors, v1.37.2 the default", all, Default())
	}
	for i := 1; i < len(all); i++ {
		if !LessVersion(all[i-1], all[i]) {
			t.Errorf("%s is not older than %s", all[i-1], all[i])
		}
	}
}

func TestWorkerImagesLeaveOutTheControlPlane(t *testing.T) {
	s, err := For("v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	worker := map[string]bool{}
	for _, img := range s.Worker() {
		worker[img] = true
		if s.ControlPlaneOnly(img) {
			t.Errorf("worker image %s is marked control-plane only", img)
		}
	}
	for _, img := range s.All() {
		if worker[img] == s.ControlPlaneOnly(img) {
			t.Errorf("%s: worker %v, control-plane only %v; exactly one must hold", img, worker[img], s.ControlPlaneOnly(img))
		}
	}
	if !worker["registry.k8s.io/pause:3.10.2"] || worker["registry.k8s.io/etcd:3.7.0-0"] {
		t.Errorf("Worker() = %v", s.Worker())
	}
}

func TestMinContainerd(t *testing.T) {
	for k, want := range map[string]string{"v1.35.4": "v1.6.0", "v1.36.3": "v2.0.0", "v1.37.2": "v2.0.0"} {
		if got := MinContainerd(k); got != want {
			t.Errorf("MinContainerd(%s) = %s, want %s", k, got, want)
		}
	}
}
