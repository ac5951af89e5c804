package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
