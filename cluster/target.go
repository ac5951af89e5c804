package cluster

import (
	"fmt"

	"kforge.dev/kforge/config"
)

// SSHOptions are the SSH settings of a host named on the command line
// (--ssh user@host) rather than in a cluster file.
type SSHOptions struct {
	KeyPath    string
	KnownHosts string
	// SudoPasswordFrom is env:NAME or file:PATH.
	SudoPasswordFrom string
	JumpHost         string
}

// SSHTarget turns [user@]host[:port] and the SSH flags into a host entry.
func SSHTarget(target string, o SSHOptions) (config.Host, error) {
	user, addr, port, err := config.ParseUserHostPort(target)
	if err != nil {
		return config.Host{}, fmt.Errorf("--ssh %q: %w (want [user@]host[:port])", target, err)
	}
	return config.Host{
		Address: addr,
		Role:    config.RoleWorker,
		SSH: config.SSH{
			User: user, Port: port, KeyPath: o.KeyPath, KnownHosts: o.KnownHosts,
			JumpHost: o.JumpHost, UseAgent: true,
		},
		Sudo: config.Sudo{PasswordFrom: o.SudoPasswordFrom},
	}, nil
}
