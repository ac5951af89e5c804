package phases

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/reporter"
)

func recorder(ran *[]string, name string, err error) func(context.Context, *Data) error {
	return func(context.Context, *Data) error {
		*ran = append(*ran, name)
		return err
	}
}

func testList(ran *[]string, failAt string) []Phase {
	mk := func(n string) func(context.Context, *Data) error {
		var err error
		if n == failAt {
			err = errors.New("disk full")
		}
		return recorder(ran, n, err)
	}
	return []Phase{
		{Name: "preflight", Short: "checks", Run: mk("preflight")},
		{Name: "control-plane", Short: "manifests", Children: []Phase{
			{Name: "apiserver", Run: mk("control-plane/apiserver")},
			{Name: "scheduler", Run: mk("control-plane/scheduler")},
		}},
		{Name: "kubelet", Run: mk("kubelet")},
	}
}

func testData() *Data {
	return &Data{Config: Config{Host: fake.Installed("node1"), Out: reporter.Discard()}}
}

func TestExecuteAllSkipAndOnly(t *testing.T) {
	cases := []struct {
		opt  Options
		want string
	}{
		{Options{}, "preflight control-plane/apiserver control-plane/scheduler kubelet"},
		{Options{Skip: []string{"control-plane"}}, "preflight kubelet"},
		{Options{Skip: []string{"control-plane/scheduler", "preflight"}}, "control-plane/apiserver kubelet"},
		{Options{Only: "control-plane"}, "control-plane/apiserver control-plane/scheduler"},
		{Options{Only: "control-plane/scheduler"}, "control-plane/scheduler"},
		{Options{Only: "kubelet"}, "kubelet"},
	}
	for _, tc := range cases {
		var ran []string
		if err := Execute(context.Background(), testList(&ran, ""), testData(), tc.opt); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ran, " "); got != tc.want {
			t.Errorf("%+v ran %q, want %q", tc.opt, got, tc.want)
		}
	}
}

// A group listed twice (init's control-plane, before and after wait) is one
// name: selecting or skipping it covers both parts, in list order.
func TestExecuteGroupInTwoParts(t *testing.T) {
	var ran []string
	list := []Phase{
		{Name: "control-plane", Children: []Phase{{Name: "apiserver", Run: recorder(&ran, "control-plane/apiserver", nil)}}},
		{Name: "wait", Run: recorder(&ran, "wait", nil)},
		{Name: "control-plane", Children: []Phase{{Name: "scheduler", Run: recorder(&ran, "control-plane/scheduler", nil)}}},
	}
	if got := strings.Join(Names(list), " "); got != "control-plane control-plane/apiserver wait control-plane/scheduler" {
		t.Errorf("Names = %q", got)
	}
	if got := strings.Join(Names(Merged(list)), " "); got != "control-plane control-plane/apiserver control-plane/scheduler wait" {
		t.Errorf("Names(Merged) = %q", got)
	}
	if len(list[0].Children) != 1 {
		t.Errorf("Merged changed its argument: %+v", list[0])
	}
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{}, "control-plane/apiserver wait control-plane/scheduler"},
		{Options{Only: "control-plane"}, "control-plane/apiserver control-plane/scheduler"},
		{Options{Only: "control-plane/scheduler"}, "control-plane/scheduler"},
		{Options{Skip: []string{"control-plane"}}, "wait"},
	} {
		ran = nil
		if err := Execute(context.Background(), list, testData(), tc.opt); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ran, " "); got != tc.want {
			t.Errorf("%+v ran %q, want %q", tc.opt, got, tc.want)
		}
	}
}

func TestExecuteStopsAtFailureNamingPhaseAndHost(t *testing.T) {
	var ran []string
	err := Execute(context.Background(), testList(&ran, "control-plane/apiserver"), testData(), Options{})
	var pe *Error
	if !errors.As(err, &pe) || pe.Phase != "control-plane/apiserver" {
		t.Fatalf("got %v", err)
	}
	if err.Error() != "phase control-plane/apiserver on node1: disk full" {
		t.Fatalf("message: %s", err)
	}
	if strings.Join(ran, " ") != "preflight control-plane/apiserver" {
		t.Fatalf("ran past the failure: %v", ran)
	}
}

func TestUnknownPhaseNamesFlag(t *testing.T) {
	var ran []string
	err := Execute(context.Background(), testList(&ran, ""), testData(), Options{Skip: []string{"certz"}})
	if err == nil || !strings.Contains(err.Error(), "--skip-phases: unknown phase certz; phases are: control-plane,") {
		t.Fatalf("got %v", err)
	}
	if len(ran) != 0 {
		t.Fatal("phases ran despite a bad flag")
	}
}

func TestTree(t *testing.T) {
	var ran []string
	tree := Tree(testList(&ran, ""))
	if !strings.Contains(tree, "  preflight ") || !strings.Contains(tree, "    apiserver") {
		t.Fatalf("tree:\n%s", tree)
	}
}

// In JSON mode every phase that runs has one start and one end event
// naming the host and the phase's path, a failure's end carries its
// error, and phases left out get a skip event with the reason.
func TestExecuteJSONEvents(t *testing.T) {
	type event struct {
		Event, Host, Phase, Error, Reason string
		DurationSeconds                   *float64 `json:"duration_seconds"`
	}
	run := func(list []Phase, opt Options) ([]event, error) {
		var out bytes.Buffer
		d := &Data{Config: Config{Host: fake.Installed("node1"), Out: reporter.NewJSON(&out, nil, "init")}}
		err := Execute(context.Background(), list, d, opt)
		var evs []event
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var e event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not JSON: %q: %v", line, err)
			}
			evs = append(evs, e)
		}
		return evs, err
	}

	var ran []string
	evs, err := run(testList(&ran, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		if e.Host != "node1" {
			t.Errorf("event %+v does not name host node1", e)
		}
		if (e.Event == "phase-end") != (e.DurationSeconds != nil) {
			t.Errorf("event %+v: duration_seconds on phase-end and only there", e)
		}
		got = append(got, e.Event+" "+e.Phase)
	}
	want := "phase-start preflight, phase-end preflight, " +
		"phase-start control-plane/apiserver, phase-end control-plane/apiserver, " +
		"phase-start control-plane/scheduler, phase-end control-plane/scheduler, " +
		"phase-start kubelet, phase-end kubelet"
	if strings.Join(got, ", ") != want {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, ", "), want)
	}

	ran = nil
	list := testList(&ran, "control-plane/apiserver")
	list[2].API = true
	evs, err = run(list, Options{Skip: []string{"preflight"}, NoAPI: true})
	if err == nil {
		t.Fatal("the failing phase did not fail")
	}
	got = nil
	for _, e := range evs {
		got = append(got, e.Event+" "+e.Phase+" "+e.Reason+e.Error)
	}
	want = "phase-skip preflight --skip-phases, " +
		"phase-start control-plane/apiserver , phase-end control-plane/apiserver disk full"
	if strings.Join(got, ", ") != want {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, ", "), want)
	}

	ran = nil
	list = testList(&ran, "")
	list[2].API = true
	evs, _ = run(list, Options{NoAPI: true})
	if last := evs[len(evs)-1]; last.Event != "phase-skip" || last.Phase != "kubelet" || !strings.Contains(last.Reason, "dry run") {
		t.Errorf("an API phase in a dry run: %+v", last)
	}
}
