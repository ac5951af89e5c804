package ssh

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh/agent"

	"kforge.dev/kforge/host"
)

func dialT(t *testing.T, cfg Config) *Host {
	t.Helper()
	h, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func whoami(t *testing.T, h *Host, sudo bool) string {
	t.Helper()
	res, err := h.Run(context.Background(), host.Cmd{Argv: []string{"id", "-un"}, Sudo: sudo})
	if err != nil {
		t.Fatalf("id -un: %v", err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

func TestKeyAuth(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	for _, user := range []string{"root", userKey} {
		h := dialT(t, s.config(e, user))
		if got := whoami(t, h, false); got != user {
			t.Errorf("logged in as %q, want %q", got, user)
		}
	}

	cfg := s.config(e, userKey)
	cfg.KeyPaths = []string{e.stranger}
	_, err := Dial(context.Background(), cfg)
	var de *DialError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "login as "+userKey+" refused") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("unauthorized key: got %v, want a DialError naming the host and the refused login", err)
	}
}

func TestEncryptedKey(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	cfg := s.config(e, userKey)
	cfg.KeyPaths = []string{e.encrypted}

	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("no passphrase: got %v, want an error saying the key is encrypted", err)
	}
	cfg.Passphrase = func(string) ([]byte, error) { return []byte("wrong"), nil }
	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: got %v", err)
	}
	var asked string
	cfg.Passphrase = func(p string) ([]byte, error) { asked = p; return []byte(keyPassphrase), nil }
	h := dialT(t, cfg)
	if asked != e.encrypted {
		t.Errorf("passphrase asked for %q, want %q", asked, e.encrypted)
	}
	if got := whoami(t, h, false); got != userKey {
		t.Errorf("logged in as %q", got)
	}
}

// serveAgent serves an in-process ssh-agent holding keys on a unix socket.
func serveAgent(t *testing.T, keys ...agent.AddedKey) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(kr, c)
			}()
		}
	}()
	return sock
}

func TestAgentAuth(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	withKey := serveAgent(t, agent.AddedKey{PrivateKey: e.privateKey})
	empty := serveAgent(t)

	cfg := s.config(e, userKey)
	cfg.KeyPaths = nil
	cfg.AgentSocket = empty
	if _, err := Dial(context.Background(), cfg); err == nil {
		t.Fatal("an agent without keys logged in")
	}

	cfg.AgentSocket = withKey
	if got := whoami(t, dialT(t, cfg), false); got != userKey {
		t.Errorf("agent socket: logged in as %q", got)
	}

	t.Setenv("SSH_AUTH_SOCK", withKey)
	cfg.AgentSocket, cfg.NoAgent = "", false
	if got := whoami(t, dialT(t, cfg), false); got != userKey {
		t.Errorf("SSH_AUTH_SOCK: logged in as %q", got)
	}
}

func TestPasswordAuth(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	cfg := s.config(e, userKey)
	cfg.KeyPaths = nil
	cfg.Password = loginPassword
	if got := whoami(t, dialT(t, cfg), false); got != userKey {
		t.Errorf("logged in as %q", got)
	}
	cfg.Password = "not-the-password"
	_, err := Dial(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "refused (offered password)") {
		t.Fatalf("wrong password: got %v", err)
	}
}
