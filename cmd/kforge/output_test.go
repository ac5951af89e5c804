package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// init --dry-run -o json: stdout is JSON Lines only (the plan as info
// events), every phase that runs starts and ends once, the API phases are
// skipped, and a summary comes last.
func TestInitDryRunJSON(t *testing.T) {
	root := newRoot()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"init", "--dry-run", "--ignore-preflight-errors", "ContainerRuntime", "--output-dir", t.TempDir(), "-o", "json", "--node-name", "cp1", "--apiserver-advertise-address", "10.1.2.3"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("init --dry-run -o json: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	type event struct {
		Event, Host, Phase, Message, Command, Error string
		Success                                     *bool
	}
	var evs []event
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Event == "" {
			t.Fatalf("stdout line is not an event: %q (%v)", line, err)
		}
		evs = append(evs, e)
		count[e.Event+" "+e.Phase]++
	}
	for _, p := range []string{"preflight", "certs", "kubeconfig", "etcd", "control-plane/apiserver", "kubelet", "control-plane/scheduler"} {
		if count["phase-start "+p] != 1 || count["phase-end "+p] != 1 {
			t.Errorf("phase %s: %d starts and %d ends", p, count["phase-start "+p], count["phase-end "+p])
		}
	}
	for _, p := range []string{"wait", "addons", "node-ready"} {
		if count["phase-skip "+p] != 1 || count["phase-start "+p] != 0 {
			t.Errorf("API phase %s in a dry run: %d skips, %d starts", p, count["phase-skip "+p], count["phase-start "+p])
		}
	}
	plan := false
	for _, e := range evs {
		if e.Event == "info" && strings.HasPrefix(e.Message, "Dry run: nothing on the host was changed") {
			plan = true
		}
		if strings.HasPrefix(e.Event, "phase-") && e.Host == "" {
			t.Errorf("no host: %+v", e)
		}
	}
	if !plan {
		t.Errorf("the plan is not among the info events")
	}
	last := evs[len(evs)-1]
	if last.Event != "summary" || last.Command != "init" || last.Success == nil || !*last.Success || last.Error != "" {
		t.Errorf("last event: %+v", last)
	}
}

func TestOutputFlagRejectsUnknownFormat(t *testing.T) {
	for _, cmd := range []string{"init", "join", "reset", "up"} {
		_, err := kforge(t, cmd, "-o", "yaml")
		if err == nil || !strings.Contains(err.Error(), "--output") || !strings.Contains(err.Error(), "text or json") {
			t.Errorf("%s -o yaml: want an error naming --output and its values, got %v", cmd, err)
		}
	}
}
