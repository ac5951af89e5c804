package main

import (
	"bufio"
	"bytes"
	"context"
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

// --token-stdin reads the token from standard input's first line: a
// malformed one is refused as --token's would be, an empty input and a
// second --token are refused, naming the flag.
func TestJoinTokenStdin(t *testing.T) {
	run := func(stdin string, args ...string) error {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(append([]string{"--plain", "join", "10.0.0.5:6443", "--token-stdin", "--discovery-token-unsafe-skip-ca-verification"}, args...))
		return root.ExecuteContext(context.Background())
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"nope\n", nil, "not a bootstrap token"},
		{"", nil, "--token-stdin: no token on standard input"},
		{"abcdef.0123456789abcdef\n", []string{"--token", "abcdef.0123456789abcdef"}, "--token and --token-stdin both give the token"},
		// A good token gets past the flags to the phases (which refuse an
		// unknown one, without touching the machine).
		{"abcdef.0123456789abcdef\n", []string{"--skip-phases", "nosuch"}, "unknown phase nosuch"},
	} {
		if err := run(tc.stdin, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("stdin %q, %v: %v, want %q", tc.stdin, tc.args, err, tc.want)
		}
	}
	r := bufio.NewReader(strings.NewReader("abcdef.0123456789abcdef\nrest"))
	if tok, err := readTokenLine(r); err != nil || tok != "abcdef.0123456789abcdef" {
		t.Errorf("readTokenLine: %q, %v", tok, err)
	}
	if rest, _ := r.ReadString(0); rest != "rest" {
		t.Errorf("after the token line, %q is left; want the rest of the input for --stop-on-stdin-eof", rest)
	}
}

// certs renew names what it takes.
func TestCertsRenewCommandLine(t *testing.T) {
	if _, err := kforge(t, "certs", "renew"); err == nil || !strings.Contains(err.Error(), "name what to renew") || !strings.Contains(err.Error(), "--expiring-within") {
		t.Errorf("certs renew without a name: %v", err)
	}
	if _, err := kforge(t, "certs", "renew", "all", "--expiring-within", "720h"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("certs renew with names and --expiring-within: %v", err)
	}
	if _, err := kforge(t, "certs", "renew", "nope"); err == nil || !strings.Contains(err.Error(), `no certificate "nope" to renew`) || !strings.Contains(err.Error(), "apiserver-etcd-client") {
		t.Errorf("certs renew nope: %v", err)
	}
	if _, err := kforge(t, "certs", "check-expiration", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("check-expiration -o yaml: %v", err)
	}
}

// token create refuses a token that would not expire soon, before it
// touches anything.
func TestTokenCreateTTL(t *testing.T) {
	for _, ttl := range []string{"0s", "-1h", "200h"} {
		if _, err := kforge(t, "token", "create", "--ttl", ttl); err == nil || !strings.Contains(err.Error(), "--ttl") || !strings.Contains(err.Error(), "168h") {
			t.Errorf("--ttl %s: %v", ttl, err)
		}
	}
}
