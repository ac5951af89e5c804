package phases

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"kforge.dev/kforge/internal/testtier"
)

// The network reset against the real iptables, in a network namespace of
// its own: kube-proxy's and the CNI's chains and the rules naming them go,
// another tool's rules in the same chains stay.
func TestResetNetworkKeepsOtherRules(t *testing.T) {
	testtier.Integration(t, "root, iptables and a network namespace")
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables")
	}
	ns := "kforge-reset-test"
	exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	in := func(script string) string {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", script, err, out)
		}
		return string(out)
	}
	in(`set -e
iptables -w 5 -t nat -N KUBE-SERVICES
iptables -w 5 -t nat -A KUBE-SERVICES -p tcp --dport 80 -j RETURN
iptables -w 5 -t nat -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables -w 5 -t nat -A PREROUTING -p tcp --dport 8080 -m comment --comment "another tool" -j RETURN
iptables -w 5 -N CNI-FORWARD
iptables -w 5 -A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
iptables -w 5 -A FORWARD -s 10.9.9.9 -j ACCEPT`)
	if out := in(resetNetworkScript); !strings.Contains(out, "chains:iptables") {
		t.Errorf("the reset reported %q", out)
	}
	rules := in("iptables -w 5 -S; iptables -w 5 -t nat -S")
	if strings.Contains(rules, "KUBE-") || strings.Contains(rules, "CNI-") {
		t.Errorf("KUBE- or CNI- rules are left:\n%s", rules)
	}
	for _, want := range []string{`--comment "another tool" -j RETURN`, "-A FORWARD -s 10.9.9.9/32 -j ACCEPT"} {
		if !strings.Contains(rules, want) {
			t.Errorf("another tool's rule %q is gone:\n%s", want, rules)
		}
	}
}
