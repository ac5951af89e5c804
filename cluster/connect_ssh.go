package cluster

import (
	"context"
	"fmt"
	"net"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/providers/ssh"
)

// sshConfig turns a cluster file entry into the SSH provider's settings,
// resolving the env:/file: secret references it names.
func sshConfig(n config.Host, o ConnectOptions) (ssh.Config, error) {
	s := n.SSH
	c := ssh.Config{
		Address:           n.Address,
		Port:              s.Port,
		User:              s.User,
		KnownHostsPath:    config.ExpandHome(s.KnownHosts),
		AcceptNewHostKeys: o.AcceptNewHostKeys,
		NoAgent:           !s.UseAgent,
		Progress:          o.Progress,
	}
	if s.KeyPath != "" {
		c.KeyPaths = []string{config.ExpandHome(s.KeyPath)}
	}
	if s.KeyPassphraseFrom != "" {
		ref := s.KeyPassphraseFrom
		c.Passphrase = func(string) ([]byte, error) {
			p, err := config.Secret(ref)
			return []byte(p), err
		}
	}
	var err error
	if c.Password, err = config.Secret(s.PasswordFrom); err != nil {
		return c, fmt.Errorf("host %s: ssh.passwordFrom: %w", n.Address, err)
	}
	if c.SudoPassword, err = config.Secret(n.Sudo.PasswordFrom); err != nil {
		return c, fmt.Errorf("host %s: sudo.passwordFrom: %w", n.Address, err)
	}
	if s.JumpHost != "" {
		user, addr, port, err := config.ParseUserHostPort(s.JumpHost)
		if err != nil {
			return c, fmt.Errorf("host %s: ssh.jumpHost: %w", n.Address, err)
		}
		// As ssh -J does: the jump host is logged into with the agent or
		// the user's default keys, never with this host's key, password or
		// sudo password, which are this host's secrets.
		jump := ssh.Config{
			Address: addr, Port: port, User: c.User,
			KnownHostsPath: c.KnownHostsPath, AcceptNewHostKeys: c.AcceptNewHostKeys,
			NoAgent: c.NoAgent, Progress: c.Progress,
		}
		if user != "" {
			jump.User = user
		}
		c.Jump = &jump
	}
	return c, nil
}

// connectSSH dials the host, through the options' pool when there is one.
func connectSSH(ctx context.Context, n config.Host, o ConnectOptions) (host.Host, error) {
	c, err := sshConfig(n, o)
	if err != nil {
		return nil, err
	}
	if o.Pool != nil {
		h, err := o.Pool.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		return noClose{h}, nil
	}
	return ssh.Dial(ctx, c)
}

// noClose is a pooled Host: closing it leaves the pool's connection open.
type noClose struct{ host.Host }

func (noClose) Close() error { return nil }

// DialContext opens connections from the pooled host (host.Dialer).
func (n noClose) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return host.Dial(ctx, n.Host, network, addr)
}
