package cluster

import (
	"context"
	"io"
	"net"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/providers/local"
	"kforge.dev/kforge/providers/ssh"
)

// ConnectOptions say how to reach hosts over SSH.
type ConnectOptions struct {
	// AcceptNewHostKeys trusts and records an unknown host's key on first
	// use. A changed key is refused regardless.
	AcceptNewHostKeys bool
	// Pool, when set, shares one connection per host across calls.
	Pool *ssh.Pool
	// Progress shows progress bars of large uploads.
	Progress io.Writer
}

// Connect returns the Host for a cluster file entry: this machine when the
// entry is marked local or names one of this machine's addresses, SSH
// otherwise.
func Connect(ctx context.Context, n config.Host, o ConnectOptions) (host.Host, error) {
	if n.Local || isLocalAddress(n.Address) {
		return local.New(), nil
	}
	return connectSSH(ctx, n, o)
}

func isLocalAddress(addr string) bool {
	if addr == "" {
		return false
	}
	ip := net.ParseIP(addr)
	if ip == nil {
		return addr == "localhost"
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
