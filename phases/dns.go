package phases

import (
	"context"
	"net"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// resolvers are the host's DNS setup as pods would see it.
type resolvers struct {
	// ResolvConf is the file the kubelet gives pods with dnsPolicy
	// Default (CoreDNS among them).
	ResolvConf string
	// Upstream: pods can reach a resolver through ResolvConf; without one
	// CoreDNS answers the cluster's names only.
	Upstream bool
}

// probeResolvers picks the kubelet's resolv.conf: /etc/resolv.conf when
// it names a resolver that is not loopback, else systemd-resolved's
// upstream list, else a file of kforge's with no resolver at all.
func probeResolvers(ctx context.Context, h host.Host) (resolvers, error) {
	out, err := host.Probe(ctx, h, "sh", "-c",
		`for f in "$@"; do [ -r "$f" ] && awk -v f="$f" '$1 == "nameserver" {print f, $2}' "$f"; done; true`, "sh", layout.ResolvConf, layout.SystemdResolvConf)
	if err != nil {
		return resolvers{}, err
	}
	found := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		file, addr, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ip := net.ParseIP(addr); ok && ip != nil && !ip.IsLoopback() {
			found[file] = true
		}
	}
	switch {
	case found[layout.ResolvConf]:
		return resolvers{ResolvConf: layout.ResolvConf, Upstream: true}, nil
	case found[layout.SystemdResolvConf]:
		return resolvers{ResolvConf: layout.SystemdResolvConf, Upstream: true}, nil
	}
	return resolvers{ResolvConf: layout.NoUpstreamResolvConf}, nil
}
