// Package doctor looks for the causes of a broken or half-working cluster
// that installers' users meet most, on a host (through the Host seam) and
// in the cluster (through the API), and names each one it finds with what
// to do about it.
package doctor

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"kforge.dev/kforge/expiration"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// Finding is one cause found: which check, where, what is wrong and what
// to do.
type Finding struct {
	Check   string `json:"check"`
	Where   string `json:"where"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

func (f Finding) String() string {
	return fmt.Sprintf("[%s] %s: %s\n    fix: %s", f.Check, f.Where, f.Problem, f.Fix)
}

// Checks' names, as findings carry them.
const (
	CheckSwap         = "swap"
	CheckIPForward    = "ip-forward"
	CheckBridgeNF     = "bridge-netfilter"
	CheckCgroupDriver = "cgroup-driver"
	CheckCRI          = "cri"
	CheckPorts        = "ports"
	CheckClock        = "clock"
	CheckCerts        = "certificates"
	CheckDisk         = "disk"
	CheckAPIReach     = "kubelet-api"
	CheckImages       = "images"
	CheckDNS          = "dns"
)

// MaxSkew is how far a host's clock may be from this machine's.
const MaxSkew = 2 * time.Second

// CertsWithin is how soon an expiry is a finding.
const CertsWithin = 30 * 24 * time.Hour

// DiskFullPercent is the use of the kubelet's file system at which the
// kubelet starts evicting pods (its default nodefs.available<10%, with a
// margin).
const DiskFullPercent = 85

// ports kforge's components listen on, with the process that should hold
// each.
var ports = map[int]string{
	6443: "kube-apiserver", 2379: "etcd", 2380: "etcd", 2381: "etcd",
	10250: "kubelet", 10248: "kubelet", 10257: "kube-controller", 10259: "kube-scheduler",
	10249: "kube-proxy", 10256: "kube-proxy",
}

// probe reads, in one command, what the host checks need.
const probe = `
echo "swap=$(awk 'NR > 1 {s += $3} END {print s + 0}' /proc/swaps 2>/dev/null)"
echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)"
echo "bridge_nf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo missing)"
echo "kubelet_driver=$(sed -n 's/^cgroupDriver: *//p' "$1" 2>/dev/null)"
echo "containerd_systemd=$(sed -n 's/^ *SystemdCgroup *= *//p' "$2" 2>/dev/null | head -1)"
echo "time=$(date +%s.%N)"
echo "disk=$(df -P /var/lib 2>/dev/null | awk 'NR == 2 {sub("%", "", $5); print $5}')"
if command -v ss >/dev/null 2>&1; then echo "listen=$(ss -Hltnp 2>/dev/null | tr '\n' '|')"; fi
if [ -e "$2" ]; then
  crictl --timeout 5s version >/dev/null 2>&1 && echo cri=ok || echo "cri=$(crictl --timeout 5s version 2>&1 | tail -1)"
fi
true`

// Host runs the host checks on h. now is this machine's clock, against
// which h's is compared (skip it with a zero now: the same machine).
func Host(ctx context.Context, h host.Host, now time.Time) ([]Finding, error) {
	start := time.Now()
	out, err := host.Probe(ctx, h, "sh", "-c", probe, "sh", layout.KubeletConfig, layout.ContainerdConfig)
	if err != nil {
		return nil, fmt.Errorf("doctor on %s: %w", h.Name(), err)
	}
	facts := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			facts[k] = strings.TrimSpace(v)
		}
	}
	where := h.Name()
	var fs []Finding
	add := func(check, problem, fix string) {
		fs = append(fs, Finding{Check: check, Where: where, Problem: problem, Fix: fix})
	}
	if kb, _ := strconv.Atoi(facts["swap"]); kb > 0 {
		add(CheckSwap, fmt.Sprintf("swap is on (%d MiB in use or reserved)", kb/1024),
			"turn it off (swapoff -a, and remove it from /etc/fstab); the kubelet refuses to run with swap unless failSwapOn is false")
	}
	// The kernel settings matter only where a cluster runs or is to run;
	// doctor reports them everywhere, as preflight would refuse them.
	if facts["ip_forward"] != "1" {
		add(CheckIPForward, "net.ipv4.ip_forward is "+orNone(facts["ip_forward"])+": this host does not route pod traffic",
			"sysctl -w net.ipv4.ip_forward=1 (kforge init sets it, and /etc/sysctl.d/99-kforge.conf keeps it)")
	}
	switch facts["bridge_nf"] {
	case "1":
	case "missing":
		add(CheckBridgeNF, "the br_netfilter module is not loaded: Services do not work for pods on the same bridge",
			"modprobe br_netfilter, then sysctl -w net.bridge.bridge-nf-call-iptables=1")
	default:
		add(CheckBridgeNF, "net.bridge.bridge-nf-call-iptables is "+orNone(facts["bridge_nf"])+": Services do not work for pods on the same bridge",
			"sysctl -w net.bridge.bridge-nf-call-iptables=1")
	}
	if d, c := facts["kubelet_driver"], facts["containerd_systemd"]; d != "" && c != "" && (d == "systemd") != (c == "true") {
		add(CheckCgroupDriver, fmt.Sprintf("the kubelet's cgroupDriver is %s but containerd's runc has SystemdCgroup = %s", d, c),
			"make both systemd or both cgroupfs (kforge init writes both from the host's facts: run it again)")
	}
	// Only where containerd is configured: a machine without a cluster
	// has no runtime to ask.
	if cri, ok := facts["cri"]; ok && cri != "ok" {
		add(CheckCRI, "the container runtime does not answer on "+layout.ContainerdSocket+": "+orNone(cri),
			"start containerd (kforge init does), and read its log")
	}
	if t, err := strconv.ParseFloat(facts["time"], 64); err == nil && !now.IsZero() {
		// The host's clock was read somewhere between start and now.
		mid := start.Add(now.Sub(start) / 2)
		skew := time.Duration((t - float64(mid.UnixNano())/1e9) * float64(time.Second))
		if math.Abs(float64(skew)) > float64(MaxSkew+now.Sub(start)/2) {
			add(CheckClock, fmt.Sprintf("its clock is %s off this machine's", skew.Round(time.Millisecond)),
				"run NTP (chrony or systemd-timesyncd) on every node: certificates and tokens are checked against the clock")
		}
	}
	if p, err := strconv.Atoi(facts["disk"]); err == nil && p >= DiskFullPercent {
		add(CheckDisk, fmt.Sprintf("/var/lib is %d%% full: the kubelet evicts pods when its disk runs low", p),
			"free space under /var/lib (old images: crictl rmi --prune) or grow the disk")
	}
	fs = append(fs, portFindings(where, facts["listen"])...)
	certs, err := expiration.Check(ctx, h, time.Now())
	if err == nil {
		for _, c := range expiration.Expiring(certs, CertsWithin) {
			state := "expires in " + expiration.HumanDuration(c.Residual)
			if c.Residual <= 0 {
				state = "has expired"
			}
			fix := "kforge certs renew all (or certs: {autoRenew: true} in the cluster file)"
			if c.RenewedBy == expiration.ByKubelet {
				fix = "the kubelet renews it: check that it can reach the API server"
			}
			if c.CA {
				fix = "a CA cannot be renewed in place: plan a new cluster, or re-sign with a new CA"
			}
			add(CheckCerts, fmt.Sprintf("%s (%s) %s", c.Name, c.File, state), fix)
		}
	}
	return fs, nil
}

var ssProcess = regexp.MustCompile(`users:\(\("([^"]+)",pid=(\d+)`)

// portFindings names kforge's ports held by another program, from
// `ss -Hltnp` lines joined with '|'.
func portFindings(where, listen string) []Finding {
	var fs []Finding
	seen := map[int]bool{}
	for _, line := range strings.Split(listen, "|") {
		fields := strings.Fields(line)
		if len(fields) < 4 {
			continue
		}
		addr := fields[3]
		port, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
		want, ours := ports[port]
		if err != nil || !ours || seen[port] {
			continue
		}
		m := ssProcess.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], want) || (want == "kube-controller" && strings.HasPrefix(m[1], "kube-controller")) {
			continue
		}
		seen[port] = true
		fs = append(fs, Finding{Check: CheckPorts, Where: where,
			Problem: fmt.Sprintf("port %d, which %s needs, is held by %s (pid %s)", port, want, m[1], m[2]),
			Fix:     "stop that program, or move it to another port"})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Problem < fs[j].Problem })
	return fs
}

func orNone(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}
