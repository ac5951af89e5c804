package ssh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// viaJump is a Config for user on target, reached through the jump host
// behind px.
func viaJump(e *testEnv, target *sshd, px *proxy, user string) Config {
	cfg := target.config(e, user)
	jump := px.config(e, "root")
	cfg.Jump = &jump
	return cfg
}

func TestJumpHost(t *testing.T) {
	e := setup(t)
	jump := startSSHD(t, e)
	target := startSSHD(t, e)
	px := startProxy(t, jump)
	ctx := context.Background()

	cfg := viaJump(e, target, px, "root")
	h := dialT(t, cfg)
	if got := whoami(t, h, false); got != "root" {
		t.Errorf("logged in as %q", got)
	}
	if h.Name() != "127.0.0.1:"+strconv.Itoa(target.port) {
		t.Errorf("Name %q, want the target's address", h.Name())
	}
	// This process holds a connection to the jump host and none to the
	// target: the jump host's sshd opened that one.
	if n := connectedTo(t, target.port); n != 0 {
		t.Errorf("%d direct connections to the target", n)
	}
	if n := connectedTo(t, px.port); n != 1 {
		t.Errorf("%d connections to the jump host, want 1", n)
	}
	forward := "target 127.0.0.1 port " + strconv.Itoa(target.port)
	if !eventually(func() bool { return jump.count(forward) == 1 }) {
		t.Errorf("the jump host's log has %d forwardings with %q, want 1", jump.count(forward), forward)
	}
	if !eventually(func() bool { return target.count("Accepted publickey for root") == 1 }) {
		t.Error("the target did not log the login")
	}

	// Files go through the tunnel too (Upload as root uses SFTP).
	dir := t.TempDir()
	if err := h.WriteFile(ctx, filepath.Join(dir, "written"), []byte("via jump"), 0o600); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "local")
	if err := os.WriteFile(local, []byte("uploaded via jump"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.Upload(ctx, local, filepath.Join(dir, "uploaded"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "uploaded")); string(got) != "uploaded via jump" {
		t.Errorf("upload through the jump host: %q", got)
	}

	// Closing the Host closes the jump connection Dial opened for it.
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return connectedTo(t, px.port) == 0 }) {
		t.Error("the jump host connection is still open after Close")
	}
	if n := px.accepted.Load(); n != 1 {
		t.Errorf("%d connections to the jump host, want 1", n)
	}
}

func TestJumpHostErrors(t *testing.T) {
	e := setup(t)
	target := startSSHD(t, e)
	targetName := "127.0.0.1:" + strconv.Itoa(target.port)

	t.Run("forwarding disabled", func(t *testing.T) {
		jump := startSSHD(t, e, "AllowTcpForwarding no")
		px := startProxy(t, jump)
		_, err := Dial(context.Background(), viaJump(e, target, px, "root"))
		t.Log(err)
		var de *DialError
		if !errors.As(err, &de) {
			t.Fatalf("got %v, want a DialError", err)
		}
		jumpName := "127.0.0.1:" + strconv.Itoa(px.port)
		for _, want := range []string{"root@" + targetName + " via root@" + jumpName, "jump host " + jumpName + " could not connect", "AllowTcpForwarding"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if !eventually(func() bool { return connectedTo(t, px.port) == 0 }) {
			t.Error("the failed Dial left its jump host connection open")
		}
	})

	t.Run("jump login refused", func(t *testing.T) {
		jump := startSSHD(t, e)
		px := startProxy(t, jump)
		cfg := viaJump(e, target, px, "root")
		cfg.Jump.KeyPaths = []string{e.stranger}
		_, err := Dial(context.Background(), cfg)
		t.Log(err)
		for _, want := range []string{"jump host for " + targetName, "login as root refused"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %q", err, want)
			}
		}
	})

	t.Run("target down", func(t *testing.T) {
		px := startProxy(t, startSSHD(t, e))
		cfg := viaJump(e, target, px, "root")
		cfg.Port = freePort(t)
		_, err := Dial(context.Background(), cfg)
		t.Log(err)
		for _, want := range []string{"jump host 127.0.0.1:" + strconv.Itoa(px.port) + " could not connect", "check that the jump host can reach the address"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %q", err, want)
			}
		}
	})

	t.Run("jump host down", func(t *testing.T) {
		cfg := target.config(e, "root")
		down := target.config(e, "root")
		down.Port = freePort(t)
		cfg.Jump = &down
		_, err := Dial(context.Background(), cfg)
		t.Log(err)
		for _, want := range []string{"jump host for " + targetName, "connection refused", "port " + strconv.Itoa(down.Port)} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %q", err, want)
			}
		}
	})
}

func TestPoolSharesJumpHost(t *testing.T) {
	e := setup(t)
	jump := startSSHD(t, e)
	target := startSSHD(t, e)
	px := startProxy(t, jump)
	p := newPoolT(t)

	asRoot := getT(t, p, viaJump(e, target, px, "root"))
	asUser := getT(t, p, viaJump(e, target, px, userKey))
	if asRoot == asUser {
		t.Fatal("two users got one Host")
	}
	if whoami(t, asRoot, false) != "root" || whoami(t, asUser, false) != userKey {
		t.Error("wrong users behind the jump host")
	}
	if n := px.accepted.Load(); n != 1 {
		t.Errorf("%d connections to the jump host, want 1 shared", n)
	}
	if n := connectedTo(t, target.port); n != 0 {
		t.Errorf("%d direct connections to the target", n)
	}
	jh := getT(t, p, px.config(e, "root"))
	if whoami(t, jh, false) != "root" || px.accepted.Load() != 1 {
		t.Errorf("the jump host itself was dialled again (%d connections)", px.accepted.Load())
	}

	// A target Host from the pool does not own the jump host: closing it
	// leaves the jump connection to the other target and to the next Get.
	asRoot.Close()
	if whoami(t, asUser, false) != userKey {
		t.Error("closing one target broke the other")
	}
	again := getT(t, p, viaJump(e, target, px, "root"))
	if again == asRoot || whoami(t, again, false) != "root" {
		t.Error("no working Host after Close")
	}
	if n := px.accepted.Load(); n != 1 {
		t.Errorf("%d connections to the jump host, want 1", n)
	}
}
