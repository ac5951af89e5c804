package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestUnknownHostKey(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	cfg := s.config(e, "root")
	cfg.KnownHostsPath = filepath.Join(t.TempDir(), "ssh", "known_hosts")
	fp := ssh.FingerprintSHA256(s.hostKey)

	_, err := Dial(context.Background(), cfg)
	var unknown *UnknownHostKeyError
	if !errors.As(err, &unknown) {
		t.Fatalf("got %v, want an UnknownHostKeyError", err)
	}
	for _, want := range []string{fp, "ssh-ed25519", "--accept-new-host-keys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := os.Stat(cfg.KnownHostsPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refusing the host touched known_hosts: %v", err)
	}

	cfg.AcceptNewHostKeys = true
	dialT(t, cfg).Close()
	fi, err := os.Stat(cfg.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %o, want 600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(cfg.KnownHostsPath)
	if !strings.Contains(string(data), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostKey)))) {
		t.Errorf("known_hosts does not hold the host key:\n%s", data)
	}

	// Now known: accepted without AcceptNewHostKeys, and not added twice.
	cfg.AcceptNewHostKeys = false
	dialT(t, cfg)
	again, _ := os.ReadFile(cfg.KnownHostsPath)
	if string(again) != string(data) {
		t.Errorf("known_hosts changed on a second login:\n%s", again)
	}
}

func TestChangedHostKey(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	old, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.config(e, "root")
	cfg.AcceptNewHostKeys = true // must not matter
	content := "# kforge test\n" + knownhosts.Line([]string{knownhosts.Normalize(cfg.hostPort())}, old) + "\n"
	if err := os.WriteFile(cfg.KnownHostsPath, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err = Dial(context.Background(), cfg)
	var changed *HostKeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("got %v, want a HostKeyChangedError", err)
	}
	if changed.KnownHosts != cfg.KnownHostsPath || changed.Line != 2 {
		t.Errorf("error names %s line %d, want %s line 2", changed.KnownHosts, changed.Line, cfg.KnownHostsPath)
	}
	for _, want := range []string{cfg.KnownHostsPath, "line 2", ssh.FingerprintSHA256(s.hostKey), ssh.FingerprintSHA256(old)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if data, _ := os.ReadFile(cfg.KnownHostsPath); string(data) != content {
		t.Errorf("known_hosts was modified:\n%s", data)
	}
	if n := s.count("Accepted publickey"); n != 0 {
		t.Errorf("logged in %d times to a host with a changed key", n)
	}
}
