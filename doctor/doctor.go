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
	"kforge.dev/kforge/messages"
)

// Finding is one cause found: which check, where, what is wrong and what
// to do.
type Finding struct {
	Check   string `json:"check"`
	Where   string `json:"where"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
	// problem and fix are the catalogues' message ids of Problem and Fix,
	// data what they show.
	problem, fix string
	data         map[string]any
}

// finding makes a Finding whose problem and fix are the messages
// doctor.PROBLEM.problem and doctor.FIX.fix (FIX "" means PROBLEM), in
// English; Localized renders it in another language.
func finding(check, where, problem, fix string, kv ...any) Finding {
	if fix == "" {
		fix = problem
	}
	data := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		data[kv[i].(string)] = kv[i+1]
	}
	f := Finding{Check: check, Where: where, problem: "doctor." + problem + ".problem", fix: "doctor." + fix + ".fix", data: data}
	en := messages.English()
	f.Problem, f.Fix = en.T(f.problem, data), en.T(f.fix, data)
	return f
}

func (f Finding) String() string { return f.Localized(messages.English()) }

// Localized is the finding for people, in p's language.
func (f Finding) Localized(p *messages.Printer) string {
	problem, fix := f.Problem, f.Fix
	if f.problem != "" {
		problem, fix = p.T(f.problem, f.data), p.T(f.fix, f.data)
	}
	return fmt.Sprintf("[%s] %s: %s\n    %s %s", f.Check, f.Where, problem, p.T("doctor.fix", nil), fix)
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
	add := func(check, problem, fix string, kv ...any) {
		fs = append(fs, finding(check, where, problem, fix, kv...))
	}
	if kb, _ := strconv.Atoi(facts["swap"]); kb > 0 {
		add(CheckSwap, "swap", "", "MiB", kb/1024)
	}
	// The kernel settings matter only where a cluster runs or is to run;
	// doctor reports them everywhere, as preflight would refuse them.
	if facts["ip_forward"] != "1" {
		add(CheckIPForward, "ip-forward", "", "Value", orNone(facts["ip_forward"]))
	}
	switch facts["bridge_nf"] {
	case "1":
	case "missing":
		add(CheckBridgeNF, "bridge-nf-missing", "")
	default:
		add(CheckBridgeNF, "bridge-nf", "", "Value", orNone(facts["bridge_nf"]))
	}
	if d, c := facts["kubelet_driver"], facts["containerd_systemd"]; d != "" && c != "" && (d == "systemd") != (c == "true") {
		add(CheckCgroupDriver, "cgroup-driver", "", "Kubelet", d, "Containerd", c)
	}
	// Only where containerd is configured: a machine without a cluster
	// has no runtime to ask.
	if cri, ok := facts["cri"]; ok && cri != "ok" {
		add(CheckCRI, "cri", "", "Socket", layout.ContainerdSocket, "Err", orNone(cri))
	}
	if t, err := strconv.ParseFloat(facts["time"], 64); err == nil && !now.IsZero() {
		// The host's clock was read somewhere between start and now.
		mid := start.Add(now.Sub(start) / 2)
		skew := time.Duration((t - float64(mid.UnixNano())/1e9) * float64(time.Second))
		if math.Abs(float64(skew)) > float64(MaxSkew+now.Sub(start)/2) {
			add(CheckClock, "clock", "", "Skew", skew.Round(time.Millisecond).String())
		}
	}
	if p, err := strconv.Atoi(facts["disk"]); err == nil && p >= DiskFullPercent {
		add(CheckDisk, "disk", "", "Percent", p)
	}
	fs = append(fs, portFindings(where, facts["listen"])...)
	certs, err := expiration.Check(ctx, h, time.Now())
	if err == nil {
		for _, c := range expiration.Expiring(certs, CertsWithin) {
			problem, fix := "cert-expiring", "cert-kforge"
			if c.Residual <= 0 {
				problem = "cert-expired"
			}
			if c.RenewedBy == expiration.ByKubelet {
				fix = "cert-kubelet"
			}
			if c.CA {
				fix = "cert-ca"
			}
			add(CheckCerts, problem, fix, "Name", c.Name, "File", c.File, "Left", expiration.HumanDuration(c.Residual))
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
		fs = append(fs, finding(CheckPorts, where, "port", "", "Port", port, "Want", want, "Program", m[1], "PID", m[2]))
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
