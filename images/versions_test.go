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
// versions: its pinned versions must be a row of the table.
func TestBuildScriptPinsMatchTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "scripts", "build-artifacts.sh"))
	if err != nil {
		t.Fatal(err)
	}
	pins := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)_VERSION=(\S+)\s*$`).FindAllStringSubmatch(string(data), -1) {
		if _, dup := pins[m[1]]; dup {
			t.Errorf("%s_VERSION pinned twice in the script", m[1])
		}
		pins[m[1]] = strings.Trim(m[2], `"'`)
	}
	row, err := VersionsFor(pins["KUBERNETES"])
	if err != nil {
		t.Fatalf("the script builds Kubernetes %q: %v", pins["KUBERNETES"], err)
	}
	for key, want := range map[string]string{
		"ETCD": row.Etcd, "COREDNS": row.CoreDNS, "PAUSE": row.Pause,
		"KUBE_ROUTER": row.KubeRouter, "CNI_PLUGINS": row.CNIPlugins,
	} {
		if got, ok := pins[key]; !ok {
			t.Errorf("scripts/build-artifacts.sh pins no %s_VERSION", key)
		} else if got != want {
			t.Errorf("scripts/build-artifacts.sh pins %s_VERSION=%s, the table has %s for Kubernetes %s",
				key, got, want, row.Kubernetes)
		}
	}
}
