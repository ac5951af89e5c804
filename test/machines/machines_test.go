// Package machines tests `make machines` and `make machines-down`: the
// machine containers that kforge's multi-node tests run on must be reachable
// with kforge's own SSH provider, as root and as a sudo user, from the
// cluster file the target prints, look like hosts to kforge's facts, reach
// each other, and be air-gapped hosts without a container runtime.
//
// It starts containers (and dockerd if needed) and builds the machine image
// on a cold cache, which takes minutes, so it runs only with
// KFORGE_MACHINES=1, as root:
//
//	KFORGE_MACHINES=1 go test -count=1 -v ./test/machines/
//
// It uses its own prefix and subnet (kforge-test-m1.., 172.30.9.0/24), so it
// leaves alone any machines a developer started with `make machines`.
package machines

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/providers/ssh"
)

const (
	prefix = "kforge-test"
	subnet = "172.30.9.0/24"
)

// makeMachines runs `make TARGET ARGS...` in the repository with the test's
// prefix and subnet and returns the last line of its standard output.
func makeMachines(ctx context.Context, t *testing.T, target string, args ...string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-s", "-C", "../..", target}, args...)...)
	cmd.Env = append(os.Environ(), "MACHINES_PREFIX="+prefix, "MACHINES_SUBNET="+subnet)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	t.Logf("make %s %s (%.1fs):\n%s", target, strings.Join(args, " "), time.Since(start).Seconds(), stderr.String())
	if err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}

func dial(ctx context.Context, t *testing.T, h config.Host, user string) *ssh.Host {
	t.Helper()
	c, err := ssh.Dial(ctx, ssh.Config{
		Address:        h.Address,
		Port:           h.SSH.Port,
		User:           user,
		KeyPaths:       []string{h.SSH.KeyPath},
		KnownHostsPath: h.SSH.KnownHosts,
		NoAgent:        true,
	})
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", user, h.Address, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func run(ctx context.Context, t *testing.T, h host.Host, sudo bool, argv ...string) string {
	t.Helper()
	res, err := h.Run(ctx, host.Cmd{Argv: argv, Sudo: sudo})
	if err != nil {
		t.Fatalf("%s: %v", h.Name(), err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

// machineIDs reads every machine's /etc/machine-id, which a recreated
// container would not keep.
func machineIDs(ctx context.Context, t *testing.T, c *config.Cluster) []string {
	var ids []string
	for _, h := range c.Hosts {
		ids = append(ids, run(ctx, t, dial(ctx, t, h, "root"), false, "cat", "/etc/machine-id"))
	}
	return ids
}

func TestMachines(t *testing.T) {
	if os.Getenv("KFORGE_MACHINES") != "1" {
		t.Skip("set KFORGE_MACHINES=1 to start machine containers (minutes on a cold cache)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it starts dockerd and containers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if os.Getenv("KEEP") != "1" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			makeMachines(ctx, t, "machines-down")
		}
	})

	file := makeMachines(ctx, t, "machines", "N=2")
	c, err := config.Load(file)
	if err != nil {
		t.Fatalf("the cluster file make machines printed: %v", err)
	}
	if len(c.Hosts) != 2 || c.Hosts[0].Role != config.RoleControlPlane || c.Hosts[1].Role != config.RoleWorker {
		t.Fatalf("%s: want a control plane and a worker, got %+v", file, c.Hosts)
	}
	if c.Hosts[0].SSH.User != "root" || c.Hosts[1].SSH.User != "kforge" {
		t.Errorf("%s: want root on machine 1 and kforge on machine 2, got %s and %s", file, c.Hosts[0].SSH.User, c.Hosts[1].SSH.User)
	}
	if fi, err := os.Stat(c.Hosts[0].SSH.KeyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key %s: want mode 0600, got %v (%v)", c.Hosts[0].SSH.KeyPath, fi.Mode(), err)
	}

	ids := map[string]string{}
	for i, h := range c.Hosts {
		wantName := fmt.Sprintf("%s-m%d", prefix, i+1)
		wantSystemd := i == 1 // machine 2 boots systemd by default
		t.Run(wantName, func(t *testing.T) {
			// Both users log in with the one key and the collected host
			// keys; kforge becomes root through sudo -n.
			root := dial(ctx, t, h, "root")
			user := dial(ctx, t, h, "kforge")
			if got := run(ctx, t, root, false, "id", "-u"); got != "0" {
				t.Errorf("root: id -u = %s", got)
			}
			if got := run(ctx, t, user, false, "id", "-un"); got != "kforge" {
				t.Errorf("kforge: id -un = %s", got)
			}
			if got := run(ctx, t, user, true, "id", "-u"); got != "0" {
				t.Errorf("kforge with sudo: id -u = %s", got)
			}

			// kforge's own view of the host, through the file's user.
			f, err := facts.Gather(ctx, map[string]*ssh.Host{"root": root, "kforge": user}[h.SSH.User])
			if err != nil {
				t.Fatal(err)
			}
			if f.Hostname != wantName || f.Systemd != wantSystemd || f.DefaultIP != h.Address || f.UID != 0 {
				t.Errorf("facts: hostname %s, systemd %v, ip %s, uid %d; want %s, %v, %s, 0",
					f.Hostname, f.Systemd, f.DefaultIP, f.UID, wantName, wantSystemd, h.Address)
			}
			// Like the hosts kforge is built on, root in a machine cannot
			// lower oom_score_adj (docker run drops CAP_SYS_RESOURCE).
			if f.CapSysResource {
				t.Errorf("facts: CAP_SYS_RESOURCE in a machine")
			}

			if addrs := run(ctx, t, user, false, "ip", "-4", "addr"); !strings.Contains(addrs, "inet "+h.Address+"/24 ") {
				t.Errorf("ip -4 addr has no %s/24:\n%s", h.Address, addrs)
			}
			if wantSystemd {
				if got := run(ctx, t, user, false, "systemctl", "is-system-running"); got != "running" {
					t.Errorf("systemctl is-system-running = %s", got)
				}
				if got := run(ctx, t, user, false, "systemctl", "is-active", "ssh"); got != "active" {
					t.Errorf("ssh unit: %q", got)
				}
			} else if got := run(ctx, t, root, false, "cat", "/proc/1/comm"); got != "tini" {
				t.Errorf("PID 1 of a plain machine is %s, want tini", got)
			}

			// What a kubelet needs in a node container.
			if got := run(ctx, t, root, false, "stat", "-c", "%F %t:%T", "/dev/kmsg"); got != "character special file 1:b" {
				t.Errorf("/dev/kmsg: %s", got)
			}
			id := run(ctx, t, root, false, "cat", "/etc/machine-id")
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
				t.Errorf("/etc/machine-id %q", id)
			}
			if other, dup := ids[id]; dup {
				t.Errorf("machine-id %s also on %s", id, other)
			}
			ids[id] = wantName
			run(ctx, t, root, false, "test", "-d", "/sys/fs/cgroup/cpu/kubelet-"+wantName)
			run(ctx, t, root, false, "test", "-d", "/sys/fs/cgroup/memory/kubelet-"+wantName)
			for _, cmd := range []string{"iptables", "conntrack", "ip", "mount"} {
				run(ctx, t, root, false, "sh", "-c", "command -v "+cmd)
			}
			// No container runtime: kforge brings it in its bundle.
			for _, cmd := range []string{"containerd", "runc", "ctr", "crun"} {
				run(ctx, t, root, false, "sh", "-c", "! command -v "+cmd)
			}

			// The machines reach each other on the private network.
			for _, o := range c.Hosts {
				if o.Address != h.Address {
					run(ctx, t, user, false, "timeout", "5", "bash", "-c", "</dev/tcp/"+o.Address+"/22")
				}
			}
		})
	}
	if t.Failed() {
		return
	}

	// Machines reach each other at addresses outside their subnet, as pods
	// routed from node to node do: docker's isolation of the internal
	// network would drop that traffic without the rule make machines adds.
	m1, m2 := dial(ctx, t, c.Hosts[0], "root"), dial(ctx, t, c.Hosts[1], "root")
	const podIP = "10.244.99.2"
	run(ctx, t, m2, false, "ip", "addr", "add", podIP+"/32", "dev", "lo")
	run(ctx, t, m1, false, "ip", "route", "add", podIP+"/32", "via", c.Hosts[1].Address)
	run(ctx, t, m1, false, "timeout", "5", "bash", "-c", "</dev/tcp/"+podIP+"/22")
	run(ctx, t, m1, false, "ip", "route", "del", podIP+"/32")
	run(ctx, t, m2, false, "ip", "addr", "del", podIP+"/32", "dev", "lo")

	// The machines have no route out and no container runtime.
	check := exec.CommandContext(ctx, "bash", "../../scripts/machines/airgap-check.sh")
	check.Env = append(os.Environ(), "MACHINES_PREFIX="+prefix)
	check.WaitDelay = 10 * time.Second
	out, err := check.CombinedOutput()
	t.Logf("airgap-check.sh:\n%s", out)
	if err != nil {
		t.Fatalf("airgap-check.sh: %v", err)
	}

	// A second run leaves the same machines (not recreated: same
	// machine-ids) and the same file, and is quick.
	before := machineIDs(ctx, t, c)
	knownHosts, _ := os.ReadFile(c.Hosts[0].SSH.KnownHosts)
	start := time.Now()
	if again := makeMachines(ctx, t, "machines", "N=2"); again != file {
		t.Errorf("second run printed %s, first %s", again, file)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("second make machines took %s", d)
	}
	if after := machineIDs(ctx, t, c); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("machines were recreated: machine-ids %v, then %v", before, after)
	}
	if kh, _ := os.ReadFile(c.Hosts[0].SSH.KnownHosts); !bytes.Equal(kh, knownHosts) {
		t.Errorf("known_hosts changed on a second run")
	}

	// machines-down removes the containers and the state, keeps the key.
	makeMachines(ctx, t, "machines-down")
	if _, err := os.Stat(filepath.Dir(file)); !os.IsNotExist(err) {
		t.Errorf("state directory %s is still there (%v)", filepath.Dir(file), err)
	}
	out, err = exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label=dev.kforge.machines.prefix="+prefix).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("containers left after machines-down: %s (%v)", out, err)
	}
	if _, err := os.Stat(c.Hosts[0].SSH.KeyPath); err != nil {
		t.Errorf("machines-down removed the key: %v", err)
	}
}
