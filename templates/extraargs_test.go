package templates

import (
	"slices"
	"strings"
	"testing"
)

// ManagedFlags reads the flags from the templates themselves: every flag
// of a rendered manifest is in it, and every overridable flag is one
// kforge sets.
func TestManagedFlags(t *testing.T) {
	c := goldenCases()[0]
	files, err := RenderControlPlane(c.controlPlane)
	if err != nil {
		t.Fatal(err)
	}
	byComponent := map[string]string{}
	for _, f := range files {
		for comp, name := range componentTemplates {
			if strings.HasSuffix(f.Path, "/"+strings.TrimPrefix(name, "controlplane/")) {
				byComponent[comp] = string(f.Data)
			}
		}
	}
	for _, comp := range Components() {
		got, err := ManagedFlags(comp)
		if err != nil || len(got) == 0 {
			t.Fatalf("%s: %v, %v", comp, got, err)
		}
		if data, ok := byComponent[comp]; ok {
			for _, line := range strings.Split(data, "\n") {
				line = strings.Trim(strings.TrimSpace(line), `"`)
				if !strings.HasPrefix(line, "- --") {
					continue
				}
				name, _, _ := strings.Cut(strings.TrimPrefix(line, "- --"), "=")
				if !slices.Contains(got, name) && extraFor(c.controlPlane, comp)[name] == "" {
					t.Errorf("%s sets --%s, which ManagedFlags(%s) misses", comp, name, comp)
				}
			}
		}
		for _, o := range Overridable(comp) {
			if !slices.Contains(got, o) {
				t.Errorf("%s: overridable --%s is not a flag kforge sets", comp, o)
			}
		}
	}
	kubelet, _ := ManagedFlags(ComponentKubelet)
	if !slices.Equal(kubelet, []string{"bootstrap-kubeconfig", "config", "hostname-override", "kubeconfig", "node-ip"}) {
		t.Errorf("kubelet: %v", kubelet)
	}
	api, _ := ManagedFlags(ComponentAPIServer)
	for _, want := range []string{"etcd-servers", "profiling", "audit-log-path", "encryption-provider-config"} {
		if !slices.Contains(api, want) {
			t.Errorf("apiServer: %v lacks %s", api, want)
		}
	}
	if _, err := ManagedFlags("proxy"); err == nil {
		t.Error("an unknown component was accepted")
	}
}

func extraFor(c ControlPlane, comp string) map[string]string {
	return map[string]map[string]string{
		ComponentAPIServer: c.APIServerExtraArgs, ComponentControllerManager: c.ControllerManagerExtraArgs,
		ComponentScheduler: c.SchedulerExtraArgs, ComponentEtcd: c.EtcdExtraArgs,
	}[comp]
}
