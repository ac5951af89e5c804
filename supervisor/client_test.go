package supervisor

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/host/fake"
)

const (
	kf    = "/var/lib/kforge/bin/kforge"
	state = "/var/lib/kforge/supervisor"
)

func TestInstall(t *testing.T) {
	ctx := context.Background()
	h := fake.New("node1")
	s := Service{Name: "containerd", Argv: []string{"/usr/bin/containerd"}, Ready: &Ready{Socket: "/run/containerd/containerd.sock"}}
	if err := Install(ctx, h, state, s); err != nil {
		t.Fatal(err)
	}
	f, ok := h.Files()[state+"/services/containerd.yaml"]
	if !ok || f.Mode != 0o644 {
		t.Fatalf("files = %v", h.Paths())
	}
	if got, err := ParseService(f.Data); err != nil || !reflect.DeepEqual(got, s) {
		t.Errorf("installed file parses to %+v, %v", got, err)
	}
	if err := Install(ctx, h, state, Service{Name: "bad", Argv: []string{"bad"}}); err == nil {
		t.Error("an invalid service was installed")
	}
	if _, ok := h.Files()[state+"/services/bad.yaml"]; ok {
		t.Error("an invalid service file was written")
	}
	if err := Uninstall(ctx, h, state, "containerd"); err != nil || len(h.Paths()) != 0 {
		t.Errorf("uninstall left %v, %v", h.Paths(), err)
	}
}

func TestStartLaunchesDetached(t *testing.T) {
	h := fake.New("node1")
	h.On(fake.Answer{})
	if err := Start(context.Background(), h, kf, state, WithLogDir("/var/log/k")); err != nil {
		t.Fatal(err)
	}
	want := []string{
		host.ShellQuote([]string{"setsid", "-f", "sh", "-c", launchScript, "sh", "/var/log/k",
			kf, "supervise", "run", "--state-dir", state, "--log-dir", "/var/log/k"}),
		kf + " supervise wait --state-dir " + state + " --log-dir /var/log/k --timeout 30s",
	}
	if got := h.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestStartReloadsARunningSupervisor(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		status string
		want   []string
	}{
		{`{"running": true, "pid": 7}`, []string{
			kf + " supervise status --state-dir " + state + " --json",
			kf + " supervise reload --state-dir " + state + " --timeout 1m0s",
		}},
		{`{"running": false}`, []string{ // a stale pid file
			kf + " supervise status --state-dir " + state + " --json",
			"setsid -f sh -c",
			kf + " supervise wait --state-dir " + state + " --log-dir /var/log/kforge --timeout 30s",
		}},
	} {
		h := fake.New("node1")
		h.WriteFile(ctx, state+"/supervisor.pid", []byte("7\n"), 0o644)
		h.On(fake.Answer{})
		h.On(fake.Answer{Stdout: tc.status}, kf, "supervise", "status")
		if err := Start(ctx, h, kf, state); err != nil {
			t.Fatal(err)
		}
		got := h.Calls()
		if len(got) != len(tc.want) {
			t.Fatalf("calls:\n%s", strings.Join(got, "\n"))
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("call %d = %q, want %q", i, got[i], tc.want[i])
			}
		}
	}
}

func TestStatusStopWait(t *testing.T) {
	h := fake.New("node1")
	h.On(fake.Answer{})
	h.On(fake.Answer{Stdout: `{"running":true,"pid":9,"services":[{"name":"kubelet","state":"running","pid":10,"restarts":2}]}`}, kf, "supervise", "status")
	ctx, cancel := context.WithTimeout(context.Background(), 10500*time.Millisecond)
	defer cancel()
	r, err := Status(ctx, h, kf, state)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := r.Service("kubelet"); !r.Running || r.PID != 9 || !ok || s.PID != 10 || s.Restarts != 2 {
		t.Errorf("report = %+v", r)
	}
	if err := Stop(ctx, h, kf, state); err != nil {
		t.Fatal(err)
	}
	if err := Wait(ctx, h, kf, state, "containerd", "kubelet"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		kf + " supervise status --state-dir " + state + " --json",
		kf + " supervise stop --state-dir " + state + " --timeout 10s",
		kf + " supervise wait --state-dir " + state + " --timeout 10s --service containerd --service kubelet",
	}
	if got := h.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	bad := fake.New("node2")
	bad.On(fake.Answer{Stdout: "not json"})
	if _, err := Status(ctx, bad, kf, state); err == nil || !strings.Contains(err.Error(), "node2") {
		t.Errorf("garbage status output: err = %v", err)
	}
	failing := fake.New("node3")
	failing.On(fake.Answer{Stderr: "permission denied", ExitCode: 1})
	if err := Stop(ctx, failing, kf, state); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("failed stop: err = %v", err)
	}
}
