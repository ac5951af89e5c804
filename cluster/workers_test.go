package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/reporter"
)

// A worker's `kforge join -o json` relayed by init -o json: one stream of
// JSON Lines in which the worker's events name the worker, and the
// summary lists every host's result.
func TestWorkersJSONStream(t *testing.T) {
	w := fake.New("10.0.0.3")
	w.On(fake.Answer{
		Stdout: `{"event":"phase-start","time":"2025-01-02T03:04:05Z","host":"localhost","phase":"preflight"}` + "\n" +
			`{"event":"phase-end","time":"2025-01-02T03:04:06Z","host":"localhost","phase":"preflight","duration_seconds":1}` + "\n" +
			`{"event":"summary","time":"2025-01-02T03:04:06Z","command":"join","success":true,"duration_seconds":1}` + "\n",
		Stderr: "W0102 03:04:05 a warning from client-go\n",
	}, "kforge", "join")
	var out bytes.Buffer
	r := reporter.NewJSON(&out, nil, "init")
	if err := runPrefixed(context.Background(), w, r, []string{"kforge", "join", "--output", r.Format()}, ""); err != nil {
		t.Fatal(err)
	}
	err := summarize(r, "Workers", []HostResult{
		{Host: "10.0.0.4", Outcome: "failed", Duration: time.Second, Err: errors.New("connect: refused")},
		{Host: "10.0.0.3", Outcome: "joined as w1", Duration: 2 * time.Second},
	})
	if err == nil || !strings.Contains(err.Error(), "10.0.0.4") {
		t.Fatalf("summarize: %v", err)
	}
	r.Finish(err)

	var evs []reporter.Event
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e reporter.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		evs = append(evs, e)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Event+"@"+e.Host)
	}
	want := "phase-start@10.0.0.3 phase-end@10.0.0.3 info@10.0.0.3 summary@"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("events %s, want %s\n%s", got, want, out.String())
	}
	s := evs[3]
	if s.Success == nil || *s.Success || len(s.Hosts) != 2 || s.Hosts[0].Host != "10.0.0.3" || s.Hosts[1].Error != "connect: refused" {
		t.Errorf("summary: %s", out.String())
	}
}

// Text mode is as before: the worker's lines prefixed with its name, then
// a line per host.
func TestWorkersText(t *testing.T) {
	w := fake.New("10.0.0.3")
	w.On(fake.Answer{Stdout: "[ok] preflight 5ms\n[ok] discovery 1.00s"}, "kforge", "join")
	var out bytes.Buffer
	r := reporter.New(&out, nil, true)
	if err := runPrefixed(context.Background(), w, r, []string{"kforge", "join", "--output", r.Format()}, ""); err != nil {
		t.Fatal(err)
	}
	if err := summarize(r, "Workers", []HostResult{{Host: "10.0.0.3", Outcome: "joined as w1", Duration: 2 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	want := "[10.0.0.3] [ok] preflight 5ms\n[10.0.0.3] [ok] discovery 1.00s\n\nWorkers:\n  10.0.0.3             joined as w1 in 2s\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if calls := w.Calls(); len(calls) != 1 || calls[0] != "kforge join --output text" {
		t.Errorf("calls: %v", calls)
	}
}
