package main

import (
	"strings"
	"testing"
)

// TestJoinCommandLine: join's help lists its phases, and a wrong command
// line fails with a message that says what to pass, before kforge looks at
// the machine.
func TestJoinCommandLine(t *testing.T) {
	out, err := kforge(t, "join", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"preflight", "discovery", "kubelet-start", "--discovery-token-ca-cert-hash", "--discovery-token-unsafe-skip-ca-verification", "--token", "--node-name", "--skip-phases"} {
		if !strings.Contains(out, s) {
			t.Errorf("join --help lacks %q:\n%s", s, out)
		}
	}
	const token = "abcdef.0123456789abcdef"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"join", "--token", token}, "the API server's endpoint"},
		{[]string{"join", "10.0.0.5:6443", "--token", token}, "--discovery-token-ca-cert-hash is required"},
		{[]string{"join", "10.0.0.5:6443", "--token", "nope", "--discovery-token-unsafe-skip-ca-verification"}, "not a bootstrap token"},
		{[]string{"join", "phase", "discovery", "--token", token}, "the API server's endpoint"},
		{[]string{"join", "10.0.0.5:6443", "--token", token, "--discovery-token-unsafe-skip-ca-verification", "--skip-phases", "nosuch"}, "unknown phase nosuch"},
	} {
		if _, err := kforge(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("kforge %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
