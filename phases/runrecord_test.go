package phases

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
)

// TestPreflightKnowsItsOwnPartialWork: a run killed after it wrote the API
// server's manifest but before it installed the kubelet's service leaves
// what a foreign cluster would; the run record tells them apart.
func TestPreflightKnowsItsOwnPartialWork(t *testing.T) {
	ctx := context.Background()
	d, h := fakeNode(t, ciHost)
	leftover := "listen=\ndiskfree=50000\nours=\n"
	h.OnFunc(func(c host.Cmd) fake.Answer {
		if strings.Contains(c.Argv[2], "/proc/net/tcp") {
			return fake.Answer{Stdout: leftover}
		}
		return fake.Answer{}
	}, "sh", "-c")
	d.Command = "up"
	if err := Execute(ctx, Init(), d, Options{Only: "preflight"}); err != nil {
		t.Fatal(err)
	}
	rec, ok := h.Files()[layout.RunRecord]
	if !ok {
		t.Fatalf("preflight recorded no run; files %v", h.Paths())
	}
	var r runRecord
	if err := json.Unmarshal(rec.Data, &r); err != nil || r.Command != "up" || r.Cluster != d.Endpoint || r.Started.IsZero() {
		t.Fatalf("run record %s: %+v %v", rec.Data, r, err)
	}

	// The kill: the API server's manifest is there and listens, no service yet.
	leftover = "listen=192B\ndiskfree=50000\nours=\nleftover=" + layout.ManifestsDir + "/kube-apiserver.yaml\n"
	if err := Execute(ctx, Init(), d, Options{Only: "preflight"}); err != nil {
		t.Errorf("a re-run refuses the partial work of its own killed run: %v", err)
	}
	if again := h.Files()[layout.RunRecord].Data; string(again) != string(rec.Data) {
		t.Errorf("a re-run rewrote the run record: %s -> %s", rec.Data, again)
	}

	// Without the record the same files are someone else's.
	if err := h.Remove(ctx, layout.RunRecord); err != nil {
		t.Fatal(err)
	}
	err := Execute(ctx, Init(), d, Options{Only: "preflight"})
	if err == nil || !strings.Contains(err.Error(), "[Leftovers]") || !strings.Contains(err.Error(), "kube-apiserver.yaml") {
		t.Errorf("leftovers of a cluster kforge did not build: %v", err)
	}

	// A record of another cluster's run is refused, naming it.
	other := `{"command":"init","cluster":"10.9.9.9:6443","started":"2026-12-01T10:00:00Z"}`
	if err := h.WriteFile(ctx, layout.RunRecord, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Execute(ctx, Init(), d, Options{Only: "preflight"})
	if err == nil || !strings.Contains(err.Error(), "another cluster (10.9.9.9:6443)") || !strings.Contains(err.Error(), "kforge reset") {
		t.Errorf("a run record of another cluster: %v", err)
	}
}

// TestJoinRecordsItsRunOnlyAfterDiscovery: a join with a wrong token or
// hash leaves nothing on the worker, the run record included.
func TestJoinRecordsItsRunOnlyAfterDiscovery(t *testing.T) {
	ctx := context.Background()
	d, h, ca := fakeWorker(t, ciHost)
	if err := Execute(ctx, Join(), d, Options{Only: "preflight"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Files()[layout.RunRecord]; ok {
		t.Fatal("join's preflight recorded a run before discovery")
	}
	discovered(d, ca)
	if err := Execute(ctx, Join(), d, Options{Only: "discovery"}); err != nil {
		t.Fatal(err)
	}
	var r runRecord
	if err := json.Unmarshal(h.Files()[layout.RunRecord].Data, &r); err != nil || r.Cluster != d.Discovery.CACertHashes[0] {
		t.Errorf("after discovery the run record is %+v (%v)", r, err)
	}
}

// TestPhasesRecordTheRunWithoutPreflight: `kforge init phase etcd` (or
// --skip-phases preflight) writes the record before its first change.
func TestPhasesRecordTheRunWithoutPreflight(t *testing.T) {
	ctx := context.Background()
	d, h := fakeNode(t, ciHost)
	if err := Execute(ctx, Init(), d, Options{Only: "etcd"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Files()[layout.RunRecord]; !ok {
		t.Fatalf("init phase etcd wrote no run record; files %v", h.Paths())
	}
	other := `{"command":"init","cluster":"10.9.9.9:6443","started":"2026-12-01T10:00:00Z"}`
	d2, h2 := fakeNode(t, ciHost)
	if err := h2.WriteFile(ctx, layout.RunRecord, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Execute(ctx, Init(), d2, Options{Only: "etcd"})
	if err == nil || !strings.Contains(err.Error(), "another cluster") {
		t.Errorf("a phase run alone on another cluster's host: %v", err)
	}
	if _, ok := h2.Files()[layout.ManifestsDir+"/etcd.yaml"]; ok {
		t.Error("it wrote etcd's manifest anyway")
	}
}
