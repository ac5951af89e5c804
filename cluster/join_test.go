package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
	"kforge.dev/kforge/services"
)

// TestJoinChecksItsArgumentsFirst: a wrong command line fails before
// kforge looks at the host.
func TestJoinChecksItsArgumentsFirst(t *testing.T) {
	ok := JoinOptions{
		Endpoint: "10.0.0.5:6443", Token: "abcdef.0123456789abcdef",
		CACertHashes: []string{"sha256:" + strings.Repeat("ab", 32)}, Out: reporter.Discard(),
	}
	for _, tc := range []struct {
		name   string
		change func(o *JoinOptions)
		want   string
	}{
		{"no endpoint", func(o *JoinOptions) { o.Endpoint = "" }, "needs the API server's endpoint"},
		{"a URL path", func(o *JoinOptions) { o.Endpoint = "https://10.0.0.5:6443/api" }, "want host:port"},
		{"no token", func(o *JoinOptions) { o.Token = "" }, "--token is required"},
		{"a malformed token", func(o *JoinOptions) { o.Token = "abcdef-0123456789abcdef" }, "[a-z0-9]{6}.[a-z0-9]{16}"},
		{"no CA hash", func(o *JoinOptions) { o.CACertHashes = nil }, "--discovery-token-unsafe-skip-ca-verification"},
		{"a malformed CA hash", func(o *JoinOptions) { o.CACertHashes = []string{"abab"} }, "sha256:<64 hex digits>"},
		{"an unknown phase", func(o *JoinOptions) { o.SkipPhases = []string{"kubelet"} }, "unknown phase kubelet"},
		{"a missing bundle", func(o *JoinOptions) { o.Bundle = "/nonexistent/kforge.tar.zst" }, "--bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.change(&o)
			if err := Join(context.Background(), o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	o := ok
	o.CACertHashes, o.UnsafeSkipCAVerification = nil, true
	if d, err := joinDiscoveryOptions(o); err != nil || !d.UnsafeSkipCAVerification || d.Token.ID != "abcdef" {
		t.Errorf("unsafe skip: %+v %v", d, err)
	}
}

// TestJoinFailedUndoesOnlyAFreshJoin: a failure after discovery on a host
// that had not joined is undone; a host that had joined, a failure before
// anything was written, or a single phase is left alone.
func TestJoinFailedUndoesOnlyAFreshJoin(t *testing.T) {
	failure := &phases.Error{Phase: "wait", Host: "w1", Err: errors.New("node w1 not ready after 4m0s")}
	for _, tc := range []struct {
		name   string
		join   phases.Results
		phase  string
		undone bool
		says   string
		notice string
	}{
		{"after discovery on a fresh host", phases.Results{Wrote: true}, "", true, "back as it was before the join", ""},
		{"after the node registered", phases.Results{Wrote: true, Registered: true}, "", true, "back as it was", "kubectl delete node w1"},
		{"before anything was written", phases.Results{}, "", false, "Nothing was changed on w1", ""},
		{"on a host that had joined", phases.Results{Wrote: true, Joined: true}, "", false, "keeps its membership", ""},
		{"in a single phase", phases.Results{Wrote: true}, "wait", false, "run the phase again", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := fake.New("w1")
			h.On(fake.Answer{})
			ctx := context.Background()
			h.WriteFile(ctx, layout.KubeletConf, []byte("x"), 0o600)
			h.WriteFile(ctx, layout.CACert, []byte("x"), 0o644)
			j := tc.join
			d := &phases.Data{
				Config:   phases.Config{Cluster: config.Default(), Host: h, Out: reporter.Discard()},
				Services: services.For(h, facts.Facts{}, ""), NodeName: "w1", Results: j,
			}
			err := joinFailed(ctx, JoinOptions{Phase: tc.phase, Out: reporter.Discard()}, d, failure)
			var pe *phases.Error
			if !errors.As(err, &pe) || pe.Phase != "wait" {
				t.Errorf("the phase's error is lost: %v", err)
			}
			if !strings.Contains(err.Error(), tc.says) || (tc.notice != "") != strings.Contains(err.Error(), "kubectl delete node") {
				t.Errorf("got %v, want it to say %q (and %q)", err, tc.says, tc.notice)
			}
			_, left := h.Files()[layout.KubeletConf]
			if left == tc.undone {
				t.Errorf("undone %v, want %v; files left: %v", !left, tc.undone, h.Paths())
			}
		})
	}
}
