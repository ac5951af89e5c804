package reporter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPlainStepsAndTotal(t *testing.T) {
	var out, log bytes.Buffer
	r := New(&out, &log, false) // a bytes.Buffer is never a terminal
	clock := time.Unix(0, 0)
	r.now = func() time.Time { return clock }
	r.started = clock
	done := r.Step("certs")
	clock = clock.Add(1240 * time.Millisecond)
	done(nil)
	done = r.Step("etcd")
	clock = clock.Add(60 * time.Millisecond)
	done(errors.New("boom"))
	r.Total("init finished")
	want := "[ok] certs 1.24s\n[FAILED] etcd 60ms\ninit finished in 1.30s\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !strings.Contains(log.String(), "end etcd after 60ms: boom") {
		t.Fatalf("verbose log lacks the failure: %s", log.String())
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		85 * time.Millisecond:   "85ms",
		1240 * time.Millisecond: "1.24s",
		123 * time.Second:       "2m03s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestTextHostsForHostAndRelay(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, nil, true)
	r.now = func() time.Time { return time.Unix(0, 0) }
	w1 := r.ForHost("10.0.0.2")
	w1.StepOn("ignored-in-text", "files")(nil)
	w1.Infof("  removed a\nand b")
	relay := r.Relay("10.0.0.3")
	relay.Write([]byte("[ok] preflight 5ms\n[ok] disc"))
	relay.Write([]byte("overy 1.00s\npartial"))
	relay.Close()
	r.Hosts("Workers", []HostResult{
		{Host: "10.0.0.2", Outcome: "reset", Duration: 1234 * time.Millisecond},
		{Host: "10.0.0.3", Outcome: "failed", Duration: 5 * time.Second, Err: errors.New("phase wait on w2: timeout\nkubelet log: x")},
	})
	want := "[10.0.0.2] [ok] files 0ms\n" +
		"[10.0.0.2]   removed a\n[10.0.0.2] and b\n" +
		"[10.0.0.3] [ok] preflight 5ms\n[10.0.0.3] [ok] discovery 1.00s\n[10.0.0.3] partial\n" +
		"\nWorkers:\n" +
		"  10.0.0.2             reset in 1.23s\n" +
		"  10.0.0.3             FAILED after 5s: phase wait on w2: timeout\n      kubelet log: x\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

// events decodes JSON Lines output, failing on any line that is not one
// JSON object with an event and a time.
func events(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", i+1, err, line)
		}
		if e["event"] == nil || e["event"] == "" {
			t.Fatalf("line %d has no event: %s", i+1, line)
		}
		ts, _ := e["time"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("line %d: time %q is not RFC 3339: %v", i+1, ts, err)
		}
		evs = append(evs, e)
	}
	return evs
}

func TestJSONEvents(t *testing.T) {
	var out, log bytes.Buffer
	r := NewJSON(&out, &log, "init")
	clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	r.now = func() time.Time { return clock }
	r.started = clock
	if r.Terminal() || r.Format() != "json" {
		t.Fatalf("a JSON reporter is Terminal %v, Format %q", r.Terminal(), r.Format())
	}
	done := r.StepOn("cp1", "certs")
	clock = clock.Add(1240 * time.Millisecond)
	done(nil)
	r.SkipOn("cp1", "wait", "talks to the cluster's API: not part of a dry run")
	r.Infof("\nJoin workers by running this on each as root:\n  %s", "kforge join 10.0.0.1:6443 --token a.b")
	fmt.Fprint(r.Writer(), "Files (2):\n  0600 /etc/kubernetes/admin.conf\n\nContinue? [y/N] ")
	done = r.StepOn("cp1", "control-plane/apiserver")
	clock = clock.Add(60 * time.Millisecond)
	done(errors.New("boom"))
	r.Progress("images", 3)() // no bar, no output
	r.Total("kforge init finished")
	r.Hosts("Workers", []HostResult{
		{Host: "10.0.0.3", Outcome: "joined as w2", Duration: 2 * time.Second},
		{Host: "10.0.0.4", Outcome: "failed", Duration: 500 * time.Millisecond, Err: errors.New("connect: refused")},
	})
	clock = clock.Add(700 * time.Millisecond)
	r.Finish(errors.New("phase control-plane/apiserver on cp1: boom"))
	r.Finish(nil) // only one summary

	evs := events(t, out.String())
	kinds := ""
	for _, e := range evs {
		kinds += e["event"].(string) + " "
	}
	want := "phase-start phase-end phase-skip info info info info info phase-start phase-end summary "
	if kinds != want {
		t.Fatalf("events %q, want %q\n%s", kinds, want, out.String())
	}
	check := func(i int, field string, want any) {
		t.Helper()
		if got := evs[i][field]; got != want {
			t.Errorf("event %d (%s): %s = %#v, want %#v", i, evs[i]["event"], field, got, want)
		}
	}
	check(0, "host", "cp1")
	check(0, "phase", "certs")
	check(0, "time", "2025-01-02T03:04:05Z")
	check(1, "phase", "certs")
	check(1, "duration_seconds", 1.24)
	check(1, "error", nil)
	check(2, "phase", "wait")
	check(2, "reason", "talks to the cluster's API: not part of a dry run")
	check(3, "message", "Join workers by running this on each as root:")
	check(4, "message", "kforge join 10.0.0.1:6443 --token a.b")
	check(5, "message", "Files (2):")
	check(6, "message", "0600 /etc/kubernetes/admin.conf")
	check(7, "message", "Continue? [y/N]")
	check(9, "phase", "control-plane/apiserver")
	check(9, "error", "boom")
	check(9, "duration_seconds", 0.06)
	check(10, "command", "init")
	check(10, "success", false)
	check(10, "error", "phase control-plane/apiserver on cp1: boom")
	check(10, "duration_seconds", 2.0)
	check(10, "host", nil)
	hosts, _ := json.Marshal(evs[10]["hosts"])
	wantHosts := `[{"duration_seconds":2,"host":"10.0.0.3","outcome":"joined as w2"},{"duration_seconds":0.5,"error":"connect: refused","host":"10.0.0.4","outcome":"failed"}]`
	if string(hosts) != wantHosts {
		t.Errorf("summary hosts %s, want %s", hosts, wantHosts)
	}
	if !strings.Contains(log.String(), "end control-plane/apiserver after 60ms: boom") {
		t.Errorf("verbose log lacks the failure: %s", log.String())
	}
}

func TestJSONSummaryOfSuccess(t *testing.T) {
	var out bytes.Buffer
	r := NewJSON(&out, nil, "reset")
	r.Finish(nil)
	evs := events(t, out.String())
	if len(evs) != 1 || evs[0]["event"] != "summary" || evs[0]["success"] != true || evs[0]["command"] != "reset" {
		t.Fatalf("summary: %s", out.String())
	}
	if _, ok := evs[0]["error"]; ok {
		t.Errorf("a success has an error field: %s", out.String())
	}
	if _, ok := evs[0]["duration_seconds"].(float64); !ok {
		t.Errorf("no duration_seconds: %s", out.String())
	}
}

// A worker's kforge in JSON mode: its events come through with the
// worker's name as host, its summary is left out, and its other lines
// (stderr) become info events of the worker.
func TestJSONRelayAndForHost(t *testing.T) {
	var out bytes.Buffer
	r := NewJSON(&out, nil, "init")
	relay := r.Relay("10.0.0.3")
	relay.Write([]byte(`{"event":"phase-start","time":"2025-01-02T03:04:05.5Z","host":"localhost","phase":"discovery"}` + "\n" +
		`{"event":"phase-end","time":"2025-01-02T03:04:06Z","host":"localhost","phase":"discovery","duration_seconds":0.5,"error":"wrong CA hash"}` + "\n" +
		`{"event":"info","time":"2025-01-02T03:04:06Z","message":"Nothing was changed"}` + "\n" +
		`{"event":"summary","time":"2025-01-02T03:04:06Z","command":"join","success":false}` + "\nerror: phase disc"))
	relay.Write([]byte("overy on localhost: wrong CA hash"))
	relay.Close()
	w := r.ForHost("10.0.0.4")
	w.StepOn("", "files")(nil)
	w.Infof("  removed /etc/kubernetes")

	evs := events(t, out.String())
	if len(evs) != 7 {
		t.Fatalf("want 7 events, got:\n%s", out.String())
	}
	for i, want := range []string{"phase-start", "phase-end", "info", "info", "phase-start", "phase-end", "info"} {
		host := "10.0.0.3"
		if i > 3 {
			host = "10.0.0.4"
		}
		if evs[i]["event"] != want || evs[i]["host"] != host {
			t.Errorf("event %d: %v, want %s on %s", i, evs[i], want, host)
		}
	}
	if evs[0]["time"] != "2025-01-02T03:04:05.5Z" || evs[1]["error"] != "wrong CA hash" || evs[1]["duration_seconds"] != 0.5 {
		t.Errorf("the worker's events changed beyond their host:\n%s", out.String())
	}
	if evs[3]["message"] != "error: phase discovery on localhost: wrong CA hash" {
		t.Errorf("stderr line: %v", evs[3])
	}
	if evs[6]["message"] != "removed /etc/kubernetes" {
		t.Errorf("info of a host: %v", evs[6])
	}
}

// On a terminal, a parallel run's hosts are a line each, redrawn in
// place: the last phase finished, the count, the bytes fetched; warnings
// print above the board and other lines go to the log only.
func TestBoard(t *testing.T) {
	var out, log bytes.Buffer
	r := New(&out, &log, true)
	r.fancy = true
	clock := time.Unix(0, 0)
	r.now = func() time.Time { return clock }
	done := r.Board([]string{"10.0.0.2", "10.0.0.13"})
	a, b := r.Relay("10.0.0.2"), r.Relay("10.0.0.13")
	a.Write([]byte("[ok] preflight 5ms\n[ok] discovery 1.00s\nfetched 152.3 MiB from https://10.0.0.1:6445 (159697715 bytes)\n"))
	b.Write([]byte("[ok] preflight 5ms\n  ! a warning\nsome detail\n[FAILED] bundle 2.00s\n"))
	clock = clock.Add(3 * time.Second)
	r.FinishOn("10.0.0.2", false)
	clock = clock.Add(2 * time.Second)
	r.FinishOn("10.0.0.13", true)
	r.Infof("after the board")
	done()
	screen := regexp.MustCompile(`\x1b\[[0-9]*[AJK]|\r`).ReplaceAllString(out.String(), "")
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	last := lines[len(lines)-2:]
	if !strings.Contains(last[0], "10.0.0.2   ✓ done") || !strings.Contains(last[0], " 2 phases  fetched 152.3 MiB  3.00s") {
		t.Errorf("host line: %q", last[0])
	}
	if !strings.Contains(last[1], "10.0.0.13  ✗ failed after bundle") || !strings.Contains(last[1], " 1 phases  5.00s") {
		t.Errorf("host line: %q", last[1])
	}
	if strings.Count(screen, "[10.0.0.13]   ! a warning\n") != 1 || strings.Count(screen, "after the board\n") != 1 {
		t.Errorf("the warning and the info line are not printed once above the board:\n%s", screen)
	}
	if strings.Contains(screen, "some detail") || !strings.Contains(log.String(), "[10.0.0.13] some detail") {
		t.Errorf("a detail line reached the screen or missed the log:\nscreen:\n%s\nlog:\n%s", screen, log.String())
	}
	// Once done, lines are relayed as before.
	a.Write([]byte("late\n"))
	if !strings.HasSuffix(out.String(), "[10.0.0.2] late\n") {
		t.Errorf("a line after the board: %q", out.String()[len(out.String())-30:])
	}
}
