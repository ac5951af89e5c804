// Package facts learns what kforge needs to know about a host before it
// renders anything for it: its name and address, cgroup version, init
// system, capabilities and size. Everything is read with one read-only
// probe, so it runs in a dry run and costs one round trip over SSH.
package facts

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"kforge.dev/kforge/host"
)

// Facts about one host.
type Facts struct {
	Hostname string
	// DefaultIP is the IPv4 address of the interface holding the default
	// route, or the first global IPv4 address when there is none.
	DefaultIP string
	Arch      string
	CgroupV2  bool
	// Systemd is true when systemd runs as PID 1.
	Systemd bool
	// CapSysResource is true when root may lower oom_score_adj (bit 24 of
	// CapEff). Without it containerd must restrict oom_score_adj.
	CapSysResource bool
	CPUs           int
	MemoryMiB      int
	SwapOn         bool
	IPForward      bool
	BridgeNF       bool
	// BridgeNFAvailable: the kernel has bridge netfilter (the sysctl exists).
	BridgeNFAvailable bool
	UID               int
	// Container: the host is a container (a node container of kforge's
	// test machines, kind-style).
	Container bool
}

// SharedCgroups tells whether the host sees the cgroup v1 hierarchies of
// the machine it runs on (a container without a cgroup namespace of its
// own); its kubelet then needs a cgroup root of its own.
func (f Facts) SharedCgroups() bool { return f.Container && !f.CgroupV2 }

// probe prints one key=value per line. It only reads.
const probe = `echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"
echo "uid=$(id -u)"
echo "container=$( { [ -e /.dockerenv ] || [ -e /run/.containerenv ]; } && echo yes)"
echo "arch=$(uname -m)"
echo "cgroupfs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
echo "pid1=$(cat /proc/1/comm 2>/dev/null)"
echo "systemd_dir=$(test -d /run/systemd/system && echo yes)"
echo "capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)"
echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
echo "memkb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
echo "swaps=$(awk 'NR>1' /proc/swaps | wc -l)"
echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)"
echo "bridge_nf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)"
dev=$(ip -4 route show default 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')
if [ -n "$dev" ]; then
  echo "ip=$(ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{print $4; exit}')"
else
  echo "ip=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4; exit}')"
fi
`

// Gather reads the facts of h.
func Gather(ctx context.Context, h host.Host) (Facts, error) {
	res, err := h.Run(ctx, host.Cmd{Argv: []string{"sh", "-c", probe}, ReadOnly: true, Sudo: true})
	if err != nil {
		return Facts{}, fmt.Errorf("reading host facts: %w", err)
	}
	return Parse(string(res.Stdout))
}

// Parse turns the probe's output into Facts.
func Parse(out string) (Facts, error) {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			kv[k] = strings.TrimSpace(v)
		}
	}
	var f Facts
	f.Hostname = strings.ToLower(kv["hostname"])
	f.Arch = kv["arch"]
	f.CgroupV2 = kv["cgroupfs"] == "cgroup2fs"
	f.Systemd = kv["pid1"] == "systemd" && kv["systemd_dir"] == "yes"
	f.CPUs, _ = strconv.Atoi(kv["cpus"])
	memKB, _ := strconv.Atoi(kv["memkb"])
	f.MemoryMiB = memKB / 1024
	swaps, _ := strconv.Atoi(kv["swaps"])
	f.SwapOn = swaps > 0
	f.IPForward = kv["ip_forward"] == "1"
	f.BridgeNF = kv["bridge_nf"] == "1"
	f.Container = kv["container"] == "yes"
	f.BridgeNFAvailable = kv["bridge_nf"] != ""
	uid, err := strconv.Atoi(kv["uid"])
	if err != nil {
		return Facts{}, fmt.Errorf("reading host facts: unexpected probe output %q", out)
	}
	f.UID = uid
	if c := kv["capeff"]; c != "" {
		caps, err := strconv.ParseUint(c, 16, 64)
		if err != nil {
			return Facts{}, fmt.Errorf("reading host facts: CapEff %q is not hex", c)
		}
		f.CapSysResource = caps&(1<<24) != 0
	}
	if ip := kv["ip"]; ip != "" {
		addr, _, err := net.ParseCIDR(ip)
		if err == nil {
			f.DefaultIP = addr.String()
		}
	}
	return f, nil
}

// CgroupDriver is the cgroup driver kubelet and containerd should share:
// systemd when systemd manages the host, cgroupfs otherwise.
func (f Facts) CgroupDriver() string {
	// A node container on cgroup v1 shares the host's hierarchies; its
	// kubelet uses cgroupfs under a root of its own (see SharedCgroups).
	if f.Systemd && !f.SharedCgroups() {
		return "systemd"
	}
	return "cgroupfs"
}
