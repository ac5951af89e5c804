package config

import (
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// ServiceIP returns the n-th address of the service subnet: 1 is the API
// server's ClusterIP, 10 is CoreDNS's.
func (n Networking) ServiceIP(i int) (net.IP, error) {
	_, cidr, err := net.ParseCIDR(n.ServiceSubnet)
	if err != nil {
		return nil, fmt.Errorf("networking.serviceSubnet %q: %w", n.ServiceSubnet, err)
	}
	base := cidr.IP.To4()
	if base == nil {
		base = cidr.IP.To16()
	}
	v := new(big.Int).SetBytes(base)
	v.Add(v, big.NewInt(int64(i)))
	b := v.Bytes()
	ip := make(net.IP, len(base))
	copy(ip[len(ip)-len(b):], b)
	if !cidr.Contains(ip) {
		return nil, fmt.Errorf("networking.serviceSubnet %s has no address number %d", n.ServiceSubnet, i)
	}
	return ip, nil
}

// Durations returns the CA and leaf certificate lifetimes.
func (c Certs) Durations() (ca, leaf time.Duration, err error) {
	if ca, err = time.ParseDuration(c.CAValidity); err != nil {
		return 0, 0, fmt.Errorf("certs.caValidity: %w", err)
	}
	if leaf, err = time.ParseDuration(c.Validity); err != nil {
		return 0, 0, fmt.Errorf("certs.validity: %w", err)
	}
	return ca, leaf, nil
}

// Secret resolves a secret reference: env:NAME or file:PATH. An empty
// reference is an empty secret.
func Secret(ref string) (string, error) {
	switch {
	case ref == "":
		return "", nil
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("secret %s: environment variable %s is not set", ref, name)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		b, err := os.ReadFile(ExpandHome(strings.TrimPrefix(ref, "file:")))
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", ref, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("secret %q: use env:NAME or file:PATH", ref)
}

// ExpandHome replaces a leading ~/ with the user's home directory.
func ExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}
