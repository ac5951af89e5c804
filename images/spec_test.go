package images_test

import (
	"testing"

	"kforge.dev/kforge/images"
)

func TestRehome(t *testing.T) {
	for ref, want := range map[string]string{
		"registry.k8s.io/coredns/coredns:v1.14.6":          "harbor.example/k8s/coredns/coredns:v1.14.6",
		"docker.io/rancher/local-path-provisioner:v0.0.30": "harbor.example/k8s/rancher/local-path-provisioner:v0.0.30",
		"localhost:5000/x:1":                               "harbor.example/k8s/x:1",
		"rancher/x:1":                                      "harbor.example/k8s/rancher/x:1",
	} {
		if got := images.Rehome(ref, "harbor.example/k8s/"); got != want {
			t.Errorf("Rehome(%s) = %s, want %s", ref, got, want)
		}
	}
}
