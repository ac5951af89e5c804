package services

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/supervisor"
)

func self(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kforge")
	if err := os.WriteFile(p, []byte("kforge"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

var svc = Service{Name: "kubelet", Argv: []string{"kubelet", "--v=2"}, Unit: "kubelet", Config: []string{"/etc/kforge-test.conf"}}

func TestForChoosesFromFacts(t *testing.T) {
	h := fake.Installed("node1")
	var withSystemd facts.Facts
	withSystemd.Systemd = true
	if _, ok := For(h, withSystemd, "").(*systemd); !ok {
		t.Error("a host with systemd as PID 1 gets systemd units")
	}
	if _, ok := For(h, facts.Facts{}, "").(*supervised); !ok {
		t.Error("a host without systemd gets kforge's supervisor")
	}
}

func TestSupervisedEnsureRestartsOnlyOnChange(t *testing.T) {
	ctx := context.Background()
	h := fake.Installed("node1")
	m := For(h, facts.Facts{}, self(t))
	file := supervisor.ServiceFile(layout.SupervisorDir, "kubelet")
	write := func(conf string) {
		if err := h.WriteFile(ctx, "/etc/kforge-test.conf", []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	if err := m.Ensure(ctx, svc, false); err != nil {
		t.Fatal(err)
	}
	first := string(h.Files()[file].Data)
	if !strings.Contains(first, "/usr/bin/kubelet") || !strings.Contains(first, "KFORGE_CONFIG_SHA256") {
		t.Fatalf("service file without the resolved argv or the configuration's hash:\n%s", first)
	}
	if _, ok := h.Files()[layout.KforgeBinary]; !ok {
		t.Fatal("kforge was not installed on the host for the supervisor")
	}
	if err := m.Ensure(ctx, svc, false); err != nil {
		t.Fatal(err)
	}
	if again := string(h.Files()[file].Data); again != first {
		t.Errorf("an unchanged configuration changed the service:\n%s\n---\n%s", first, again)
	}
	if n := h.Uploads(); n != 1 {
		t.Errorf("kforge uploaded %d times in one run, want once", n)
	}
	write("b")
	if err := m.Ensure(ctx, svc, false); err != nil {
		t.Fatal(err)
	}
	if changed := string(h.Files()[file].Data); changed == first {
		t.Error("a changed configuration file left the service as it was: the supervisor would not restart it")
	}
	if owns, err := m.Owns(ctx, "kubelet"); err != nil || !owns {
		t.Errorf("Owns(kubelet) = %v, %v after Ensure", owns, err)
	}
	if err := m.Stop(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if owns, _ := m.Owns(ctx, "kubelet"); owns {
		t.Error("Stop left the service file")
	}
}

func TestSupervisedNeedsKforge(t *testing.T) {
	err := For(fake.Installed("node1"), facts.Facts{}, "").Ensure(context.Background(), svc, false)
	if err == nil || !strings.Contains(err.Error(), "kforge's own executable") {
		t.Fatalf("got %v, want an error saying kforge's executable is unknown", err)
	}
}

func TestSystemdUnits(t *testing.T) {
	ctx := context.Background()
	h := fake.Installed("node1")
	var withSystemd facts.Facts
	withSystemd.Systemd = true
	m := For(h, withSystemd, "")
	if err := m.Ensure(ctx, svc, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx, svc, true); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx, Service{Name: "containerd"}); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(h.Calls(), "\n")
	for _, want := range []string{"systemctl daemon-reload", "systemctl enable kubelet", "systemctl start kubelet", "systemctl restart kubelet"} {
		if !strings.Contains(calls, want) {
			t.Errorf("no %q in:\n%s", want, calls)
		}
	}
	if strings.Contains(calls, "containerd") || strings.Contains(calls, "setsid") {
		t.Errorf("Stop of a service without a unit of kforge's touched the OS's, or the supervisor ran:\n%s", calls)
	}
	if owns, _ := m.Owns(ctx, "kubelet"); owns {
		t.Error("Owns(kubelet) without kforge's unit file")
	}
	if err := h.WriteFile(ctx, layout.KubeletUnit, []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if owns, _ := m.Owns(ctx, "kubelet"); !owns {
		t.Error("Owns(kubelet) is false with kforge's unit file")
	}
	if err := m.Shutdown(ctx); err != nil || len(h.Calls()) != strings.Count(calls, "\n")+1 {
		t.Errorf("Shutdown under systemd ran something: %v %q", err, h.Calls())
	}
}

// TestJobs: under systemd a job is a oneshot service and an enabled timer
// a period apart, removed again by RemoveJob; under the supervisor it is a
// periodic service. Both install kforge on the host for the job to run.
func TestJobs(t *testing.T) {
	ctx := context.Background()
	j := Job{Name: "kforge-certs-renew", Argv: []string{layout.KforgeBinary, "certs", "renew", "--expiring-within", "720h"}, Every: 24 * time.Hour}

	h := fake.Installed("node1")
	var f facts.Facts
	f.Systemd = true
	m := For(h, f, self(t))
	if err := m.EnsureJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	files := h.Files()
	service, timer := string(files["/etc/systemd/system/kforge-certs-renew.service"].Data), string(files["/etc/systemd/system/kforge-certs-renew.timer"].Data)
	if !strings.Contains(service, "Type=oneshot") || !strings.Contains(service, "ExecStart=/var/lib/kforge/bin/kforge certs renew --expiring-within 720h") {
		t.Errorf("service unit:\n%s", service)
	}
	if !strings.Contains(timer, "OnUnitActiveSec=86400s") || !strings.Contains(timer, "OnBootSec=86400s") || !strings.Contains(timer, "WantedBy=timers.target") {
		t.Errorf("timer unit:\n%s", timer)
	}
	if _, ok := files[layout.KforgeBinary]; !ok {
		t.Error("kforge was not installed for the job")
	}
	if calls := strings.Join(h.Calls(), "\n"); !strings.Contains(calls, "systemctl enable --now kforge-certs-renew.timer") {
		t.Errorf("the timer was not enabled: %s", calls)
	}
	if err := m.RemoveJob(ctx, j.Name); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/systemd/system/kforge-certs-renew.service", "/etc/systemd/system/kforge-certs-renew.timer"} {
		if _, ok := h.Files()[p]; ok {
			t.Errorf("RemoveJob left %s", p)
		}
	}

	h = fake.Installed("node2")
	m = For(h, facts.Facts{}, self(t))
	if err := m.EnsureJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	sv := string(h.Files()[supervisor.ServiceFile(layout.SupervisorDir, j.Name)].Data)
	if !strings.Contains(sv, "every: 24h0m0s") || !strings.Contains(sv, "--expiring-within") {
		t.Errorf("supervisor job:\n%s", sv)
	}
}
