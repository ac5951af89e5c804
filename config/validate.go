package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"kforge.dev/kforge/images"
	"kforge.dev/kforge/templates"
)

var (
	flagNameRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	dnsLabelRe  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	secretRefRe = regexp.MustCompile(`^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$`)
)

// Validate checks the cluster for mistakes and returns every one it finds,
// each naming file (and line, for hosts) and saying what to do.
func (c *Cluster) Validate(file string) error {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	if c.APIVersion != APIVersion {
		add("%s: apiVersion is %q; use %q", file, c.APIVersion, APIVersion)
	}
	if c.Kind != Kind {
		add("%s: kind is %q; use %q", file, c.Kind, Kind)
	}
	if _, err := images.VersionsFor(c.KubernetesVersion); err != nil {
		add("%s: kubernetesVersion: %v (pick one in the cluster file or with --kubernetes-version)", file, err)
	}
	switch c.Runtime {
	case RuntimeBundle, RuntimeHost:
	default:
		add("%s: runtime %q: use %s (containerd, runc and the CNI plugins from the bundle) or %s (the host's own containerd)", file, c.Runtime, RuntimeBundle, RuntimeHost)
	}
	if c.ControlPlaneEndpoint != "" {
		if err := checkEndpoint(c.ControlPlaneEndpoint); err != nil {
			add("%s: controlPlaneEndpoint %q: %v", file, c.ControlPlaneEndpoint, err)
		}
	}

	pod, perr := parseCIDR(c.Networking.PodSubnet)
	if perr != nil {
		add("%s: networking.podSubnet: %v", file, perr)
	}
	svc, serr := parseCIDR(c.Networking.ServiceSubnet)
	if serr != nil {
		add("%s: networking.serviceSubnet: %v", file, serr)
	} else if ones, bits := svc.Mask.Size(); bits-ones > 20 {
		add("%s: networking.serviceSubnet %s is larger than a /%d; the API server allows at most 2^20 service IPs", file, svc, bits-20)
	} else if bits-ones < 4 {
		add("%s: networking.serviceSubnet %s is too small: CoreDNS needs its tenth address", file, svc)
	}
	if pod != nil && svc != nil && (pod.Contains(svc.IP) || svc.Contains(pod.IP)) {
		add("%s: networking.podSubnet %s overlaps networking.serviceSubnet %s; pick ranges that do not overlap", file, pod, svc)
	}
	if pod != nil {
		if ones, bits := pod.Mask.Size(); bits == 32 && ones > 24 {
			add("%s: networking.podSubnet %s is smaller than a /24; every node takes a /24 from it", file, pod)
		}
	}
	if d := c.Networking.DNSDomain; d == "" || !validDomain(d) {
		add("%s: networking.dnsDomain %q is not a DNS domain like cluster.local", file, d)
	}

	c.validateHosts(file, add)
	c.validateExtraArgs(file, add)
	c.validateRegistries(file, add)
	if r := c.ImageRepository; r != "" {
		if err := checkImageRepository(r); err != nil {
			add("%s: imageRepository %q: %v", file, r, err)
		}
	}

	switch c.Certs.Algorithm {
	case AlgorithmECDSAP256, AlgorithmRSA2048:
	default:
		add("%s: certs.algorithm %q: use %s or %s", file, c.Certs.Algorithm, AlgorithmECDSAP256, AlgorithmRSA2048)
	}
	caV, err1 := positiveDuration(c.Certs.CAValidity)
	if err1 != nil {
		add("%s: certs.caValidity: %v", file, err1)
	}
	v, err2 := positiveDuration(c.Certs.Validity)
	if err2 != nil {
		add("%s: certs.validity: %v", file, err2)
	}
	if err1 == nil && err2 == nil && v > caV {
		add("%s: certs.validity %s outlasts certs.caValidity %s; certificates cannot outlive their CA", file, c.Certs.Validity, c.Certs.CAValidity)
	}
	for _, san := range c.Certs.ExtraSANs {
		if net.ParseIP(san) == nil && !validDomain(strings.TrimPrefix(san, "*.")) {
			add("%s: certs.extraSANs: %q is neither an IP nor a DNS name", file, san)
		}
	}

	switch c.CNI.Plugin {
	case "bridge":
		if len(c.Hosts) > 1 {
			add("%s: cni.plugin bridge only connects pods on one node; use kube-router for %d hosts", file, len(c.Hosts))
		}
	case "kube-router":
	default:
		add("%s: cni.plugin %q: use bridge or kube-router", file, c.CNI.Plugin)
	}

	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func (c *Cluster) validateHosts(file string, add func(string, ...any)) {
	if len(c.Hosts) == 0 {
		add("%s: hosts is empty; list at least one host with role control-plane", file)
		return
	}
	cps, locals := 0, 0
	seenAddr := map[string]int{}
	seenName := map[string]int{}
	for i, h := range c.Hosts {
		at := c.where(file, i)
		switch h.Role {
		case RoleControlPlane:
			cps++
		case RoleWorker:
		default:
			add("%s: role %q: use %s or %s", at, h.Role, RoleControlPlane, RoleWorker)
		}
		if h.Local {
			locals++
		} else if h.Address == "" {
			add("%s: address is empty; give the host's IP or DNS name, or set local: true for this machine", at)
		}
		if h.Address != "" {
			key, err := addressKey(h.Address)
			if err != nil {
				add("%s: address %q: %v", at, h.Address, err)
			} else if j, dup := seenAddr[key]; dup {
				add("%s: address %s is listed twice (also hosts[%d]); list each host once", at, h.Address, j)
			} else {
				seenAddr[key] = i
			}
		}
		if h.Name != "" {
			if !dnsLabelName(h.Name) {
				add("%s: name %q is not a valid node name (lower-case letters, digits, '-' and '.')", at, h.Name)
			}
			if j, dup := seenName[h.Name]; dup {
				add("%s: name %s is used twice (also hosts[%d]); node names must be unique", at, h.Name, j)
			}
			seenName[h.Name] = i
		}
		for k, v := range h.Labels {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				add("%s: label %s=%s: %s", at, k, v, msg)
			}
		}
		for _, t := range h.Taints {
			if _, err := ParseTaint(t); err != nil {
				add("%s: taint %q: %v", at, t, err)
			}
		}
		nodeIP := h.NodeIP
		if nodeIP == "" {
			nodeIP = h.Address
		}
		if h.NodeIP != "" {
			if _, err := netip.ParseAddr(h.NodeIP); err != nil {
				add("%s: nodeIP %q is not an IP address (%v)", at, h.NodeIP, err)
			}
		}
		if ip, err := netip.ParseAddr(nodeIP); err == nil {
			for _, r := range [][2]string{{"networking.podSubnet", c.Networking.PodSubnet}, {"networking.serviceSubnet", c.Networking.ServiceSubnet}} {
				if p, err := netip.ParsePrefix(r[1]); err == nil && p.Contains(ip.Unmap()) {
					add("%s: the node's address %s is inside %s %s; pick ranges that do not hold the hosts' addresses", at, ip, r[0], p)
				}
			}
		}
		if h.Local {
			continue
		}
		if h.SSH.Port < 1 || h.SSH.Port > 65535 {
			add("%s: ssh.port %d is not a TCP port", at, h.SSH.Port)
		}
		for _, f := range [][2]string{
			{"ssh.passwordFrom", h.SSH.PasswordFrom},
			{"ssh.keyPassphraseFrom", h.SSH.KeyPassphraseFrom},
			{"sudo.passwordFrom", h.Sudo.PasswordFrom},
		} {
			if f[1] != "" && !secretRefRe.MatchString(f[1]) {
				add("%s: %s %q: use env:NAME or file:PATH", at, f[0], f[1])
			}
		}
		if h.SSH.JumpHost != "" {
			if _, _, _, err := ParseUserHostPort(h.SSH.JumpHost); err != nil {
				add("%s: ssh.jumpHost %q: %v", at, h.SSH.JumpHost, err)
			}
		}
	}
	switch {
	case cps == 0:
		add("%s: no host has role control-plane; mark one host `role: control-plane`", file)
	case cps%2 == 0:
		// etcd needs a majority of its members: with an even number,
		// one more machine adds no tolerance (2 tolerate no loss, like 1;
		// 4 tolerate one, like 3) and a split can leave no majority.
		add("%s: %d control-plane hosts; etcd keeps working while a majority (%d of %d) of them does, so an even number tolerates no more losses than one fewer: use %d or %d", file, cps, cps/2+1, cps, cps-1, cps+1)
	}
	if cps > 1 {
		for i, h := range c.Hosts {
			if h.Role == RoleControlPlane && h.Address == "" && h.NodeIP == "" {
				add("%s: a cluster with %d control planes needs each one's address (or nodeIP), which the other nodes' load balancers and etcd members reach it at", c.where(file, i), cps)
			}
		}
	}
	if vip := c.LoadBalancer.VirtualIP; vip != "" {
		at := file
		if c.LoadBalancer.line > 0 {
			at += ":" + strconv.Itoa(c.LoadBalancer.line)
		}
		ip, err := netip.ParseAddr(vip)
		switch {
		case err != nil || !ip.Is4():
			add("%s: loadBalancer.virtualIP %q is not an IPv4 address; give a free address on the control planes' subnet", at, vip)
		case cps < 3:
			add("%s: loadBalancer.virtualIP needs 3 or more control-plane hosts to move between; with %d, clients reach the API server at its own address", at, cps)
		}
		if key, err := addressKey(vip); err == nil && seenAddrHas(seenAddr, key) {
			add("%s: loadBalancer.virtualIP %s is a host's address; give a free address on the control planes' subnet", at, vip)
		}
		if c.ControlPlaneEndpoint != "" && EndpointHostOf(c.ControlPlaneEndpoint) != vip {
			add("%s: controlPlaneEndpoint %s is not loadBalancer.virtualIP %s: leave controlPlaneEndpoint out (it becomes %s:6443) or make them agree", at, c.ControlPlaneEndpoint, vip, vip)
		}
	}
	if locals > 1 {
		add("%s: %d hosts are marked local; only the machine kforge runs on can be", file, locals)
	}
}

func seenAddrHas(m map[string]int, k string) bool { _, ok := m[k]; return ok }

// ParseUserHostPort splits [user@]host[:port].
func ParseUserHostPort(s string) (user, host string, port int, err error) {
	if at := strings.LastIndex(s, "@"); at >= 0 {
		user, s = s[:at], s[at+1:]
	}
	host, port = s, 0
	if h, p, e := net.SplitHostPort(s); e == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 {
			return "", "", 0, fmt.Errorf("port %q is not a TCP port", p)
		}
		host, port = h, n
	}
	if host == "" {
		return "", "", 0, errors.New("no host name; write [user@]host[:port]")
	}
	return user, host, port, nil
}

func checkEndpoint(ep string) error {
	host, port := ep, ""
	if h, p, err := net.SplitHostPort(ep); err == nil {
		host, port = h, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a TCP port", port)
		}
	}
	if net.ParseIP(host) == nil && !validDomain(host) {
		return errors.New("write host[:port], e.g. 192.0.2.10:6443 or k8s.example.com")
	}
	return nil
}

func parseCIDR(s string) (*net.IPNet, error) {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a CIDR like 10.96.0.0/12", s)
	}
	if !ip.Equal(n.IP) {
		return nil, fmt.Errorf("%q has host bits set; did you mean %s?", s, n)
	}
	return n, nil
}

// Bounds of a certificate validity: a minute (renewal tests use minutes)
// to a hundred years.
const (
	minValidity = time.Minute
	maxValidity = 100 * 365 * 24 * time.Hour
)

func positiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 8760h (at most %s)", s, maxValidity)
	}
	if d < minValidity || d > maxValidity {
		return 0, fmt.Errorf("%q is outside %s to %s (a hundred years)", s, minValidity, maxValidity)
	}
	return d, nil
}

// addressKey checks a host's address, an IP or a DNS name, and returns the
// form two spellings of one address share: 10.0.0.1 and ::ffff:10.0.0.1
// are one host.
func addressKey(a string) (string, error) {
	if ip, err := netip.ParseAddr(a); err == nil {
		return ip.Unmap().String(), nil
	} else if strings.Trim(a, "0123456789.") == "" || strings.Contains(a, ":") {
		// Digits and dots, or a colon: meant as an IP.
		return "", fmt.Errorf("not a valid IP address (%v)", err)
	}
	if !validDomain(strings.TrimSuffix(a, ".")) {
		return "", fmt.Errorf("neither an IP address nor a DNS name")
	}
	return strings.ToLower(strings.TrimSuffix(a, ".")), nil
}

func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if !dnsLabelRe.MatchString(l) || len(l) > 63 {
			return false
		}
	}
	return true
}

func dnsLabelName(s string) bool { return validDomain(s) }

// validateExtraArgs refuses extraArgs that are not flag names, that would
// change a flag kforge sets itself (but for the overridable ones), or,
// for the kubelet, values its flags file cannot carry.
func (c *Cluster) validateExtraArgs(file string, add func(string, ...any)) {
	for _, comp := range templates.Components() {
		args := c.ExtraArgs(comp)
		if len(args) == 0 {
			continue
		}
		managed, err := templates.ManagedFlags(comp)
		if err != nil {
			add("%s: %s.extraArgs: %v", file, comp, err)
			continue
		}
		names := make([]string, 0, len(args))
		for k := range args {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			loc := file
			if l := c.extraArgLines[comp+"."+name]; l > 0 {
				loc += ":" + strconv.Itoa(l)
			}
			field := comp + ".extraArgs." + name
			switch {
			case strings.HasPrefix(name, "-"):
				add("%s: %s: write the flag's name without dashes (%s)", loc, field, strings.TrimLeft(name, "-"))
			case !flagNameRe.MatchString(name):
				add("%s: %s is not a flag name: lower-case letters, digits, dots and dashes", loc, field)
			case slices.Contains(managed, name) && !slices.Contains(templates.Overridable(comp), name):
				add("%s: %s: kforge sets --%s itself, from the rest of the cluster file; remove it (the flags kforge sets that extraArgs may change: %s)",
					loc, field, name, strings.Join(templates.Overridable(comp), ", "))
			case comp == templates.ComponentKubelet && strings.ContainsAny(args[name], " \t\n\"'\\$`"):
				add("%s: %s: %q has spaces, quotes, $ or backslashes, which the kubelet's flags file cannot carry", loc, field, args[name])
			}
		}
	}
}
