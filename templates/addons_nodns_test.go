package templates

import (
	"strings"
	"testing"
)

func TestCoreDNSWithoutUpstream(t *testing.T) {
	a := Addons{ProxyImage: "p:1", CoreDNSImage: "c:1", KforgeImage: "k:1", APIServerURL: "https://10.0.0.1:6443", CoreDNSAPIServerURL: "https://10.0.0.1:6443", PodSubnet: "10.244.0.0/16", DNSServiceIP: "10.96.0.10"}
	with, err := RenderAddons(a)
	if err != nil {
		t.Fatal(err)
	}
	a.NoUpstreamDNS = true
	without, err := RenderAddons(a)
	if err != nil {
		t.Fatal(err)
	}
	corefile := func(out []Addon) string {
		for _, x := range out {
			if x.Name == "coredns" {
				return string(x.Data)
			}
		}
		t.Fatal("no coredns addon")
		return ""
	}
	if c := corefile(with); !strings.Contains(c, "forward . /etc/resolv.conf") || !strings.Contains(c, "        loop\n") {
		t.Errorf("CoreDNS with an upstream lacks forward or loop:\n%s", c)
	}
	if c := corefile(without); strings.Contains(c, "forward .") || strings.Contains(c, "        loop\n") {
		t.Errorf("CoreDNS without an upstream still forwards:\n%s", c)
	}
}
