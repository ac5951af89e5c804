package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/config"
)

func TestSSHConfigFromClusterFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	t.Setenv("KFORGE_TEST_SUDO", "sudo-pw")
	n := config.Host{Address: "10.0.0.7", SSH: config.SSH{
		User: "ops", Port: 2222, KeyPath: "/keys/id", PasswordFrom: "file:" + pw,
		KnownHosts: "/kh", JumpHost: "jump@bastion:2200",
	}, Sudo: config.Sudo{PasswordFrom: "env:KFORGE_TEST_SUDO"}}
	c, err := sshConfig(n, ConnectOptions{AcceptNewHostKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Address != "10.0.0.7" || c.Port != 2222 || c.User != "ops" || c.Password != "s3cret" || c.SudoPassword != "sudo-pw" {
		t.Errorf("config %+v", c)
	}
	if len(c.KeyPaths) != 1 || c.KeyPaths[0] != "/keys/id" || c.KnownHostsPath != "/kh" || !c.AcceptNewHostKeys || !c.NoAgent {
		t.Errorf("keys/known_hosts/agent: %+v", c)
	}
	if c.Jump == nil || c.Jump.Address != "bastion" || c.Jump.Port != 2200 || c.Jump.User != "jump" || c.Jump.KnownHostsPath != "/kh" {
		t.Fatalf("jump host: %+v", c.Jump)
	}
	// The target's secrets are not offered to the jump host.
	if c.Jump.Password != "" || c.Jump.SudoPassword != "" || len(c.Jump.KeyPaths) != 0 || c.Jump.Passphrase != nil {
		t.Fatalf("the jump host is offered the target's credentials: %+v", c.Jump)
	}
}

func TestSSHConfigMissingSecretNamesHostAndField(t *testing.T) {
	n := config.Host{Address: "10.0.0.8", Sudo: config.Sudo{PasswordFrom: "env:KFORGE_TEST_UNSET_VAR"}}
	_, err := sshConfig(n, ConnectOptions{})
	if err == nil || !strings.Contains(err.Error(), "10.0.0.8") || !strings.Contains(err.Error(), "sudo.passwordFrom") {
		t.Fatalf("want an error naming the host and sudo.passwordFrom, got %v", err)
	}
}

func TestLoopbackIsLocal(t *testing.T) {
	if !isLocalAddress("127.0.0.1") || !isLocalAddress("localhost") || isLocalAddress("192.0.2.200") {
		t.Error("isLocalAddress")
	}
}

func TestCachedBundleIsTheNewest(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KFORGE_CACHE", dir)
	if b := CachedBundle("v1.35.4"); b != "" {
		t.Fatalf("an empty cache has bundle %s", b)
	}
	vdir := filepath.Join(dir, "bundles", "v1.35.4")
	os.MkdirAll(vdir, 0o755)
	old, newer := filepath.Join(vdir, "kforge-bundle-v1.35.4-a.tar.zst"), filepath.Join(vdir, "kforge-bundle-v1.35.4-b.tar.zst")
	os.WriteFile(old, nil, 0o644)
	os.WriteFile(newer, nil, 0o644)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	if b := CachedBundle("v1.35.4"); b != newer {
		t.Fatalf("CachedBundle = %q, want %q", b, newer)
	}
	if b := CachedBundle("v1.34.0"); b != "" {
		t.Fatalf("another version's bundle: %q", b)
	}
}
