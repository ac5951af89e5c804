package templates

import (
	"path"
	"strings"
	"testing"

	"kforge.dev/kforge/layout"
)

func TestAPIServerLB(t *testing.T) {
	lb := APIServerLB{Image: "docker.io/library/haproxy:2.6", Servers: []LBServer{
		{Name: "cp1", Address: "10.0.0.1:6443"}, {Name: "cp2", Address: "10.0.0.2:6443"}, {Name: "cp3", Address: "10.0.0.3:6443"},
	}}
	files, err := RenderAPIServerLB(lb)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != layout.APIServerLBConfig || files[1].Path != layout.APIServerLBManifest {
		t.Fatalf("files: %v", files)
	}
	cfg := string(files[0].Data)
	for _, want := range []string{"bind 127.0.0.1:6444", "server cp1 10.0.0.1:6443", "server cp3 10.0.0.3:6443", "option httpchk GET /readyz", "check-ssl verify none", "on-marked-down shutdown-sessions", "monitor-uri /healthz"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy.cfg lacks %q:\n%s", want, cfg)
		}
	}
	pod := parsePod(t, files[1])
	c := pod.Spec.Containers[0]
	if !pod.Spec.HostNetwork || c.Image != lb.Image || strings.Join(c.Command, " ") != "/usr/sbin/haproxy -db -f "+layout.APIServerLBConfig {
		t.Errorf("pod: hostNetwork %v, image %s, command %v", pod.Spec.HostNetwork, c.Image, c.Command)
	}
	if c.LivenessProbe.HTTPGet.Port.IntValue() != layout.APIServerLBHealthPort {
		t.Errorf("liveness port %v", c.LivenessProbe.HTTPGet.Port)
	}
	hash := pod.Annotations["kforge.dev/config-sha256"]
	// Another set of servers is another configuration, and the pod's
	// annotation changes with it, so that the kubelet restarts it.
	lb.Servers = lb.Servers[:2]
	again, err := RenderAPIServerLB(lb)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(again[0].Data), "cp3") || parsePod(t, again[1]).Annotations["kforge.dev/config-sha256"] == hash {
		t.Error("a changed server list left the configuration or the pod's hash as they were")
	}
	if _, err := RenderAPIServerLB(APIServerLB{Image: "x", Servers: []LBServer{{Name: "a", Address: "10.0.0.1"}}}); err == nil {
		t.Error("a server without a port was accepted")
	}
}

func TestVIP(t *testing.T) {
	v := VIP{Image: "kforge.dev/keepalived:2.2", VirtualIP: "10.0.0.100", Interface: "eth0", Address: "10.0.0.2",
		Peers: []string{"10.0.0.1", "10.0.0.3"}, Priority: 150, ClusterName: "kubernetes", NodeName: "cp2"}
	files, err := RenderVIP(v)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(files[0].Data)
	for _, want := range []string{"unicast_src_ip 10.0.0.2", "    10.0.0.1\n    10.0.0.3\n", "10.0.0.100/32 dev eth0", "priority 150", "nopreempt", "interface eth0", "router_id kforge-cp2"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, cfg)
		}
	}
	pod := parsePod(t, files[1])
	c := pod.Spec.Containers[0]
	caps := c.SecurityContext.Capabilities.Add
	if !pod.Spec.HostNetwork || len(caps) != 3 || path.Base(c.Command[0]) != "keepalived" {
		t.Errorf("pod: hostNetwork %v, capabilities %v, command %v", pod.Spec.HostNetwork, caps, c.Command)
	}
	if id := v.VirtualRouterID(); id < 1 || id > 255 {
		t.Errorf("virtual router id %d", id)
	}
	other := v
	other.ClusterName = "other"
	if other.VirtualRouterID() == v.VirtualRouterID() && other.VirtualIP == v.VirtualIP {
		t.Log("two clusters share a router ID; they differ in most cases")
	}
	v.Interface = ""
	if _, err := RenderVIP(v); err == nil {
		t.Error("no interface was accepted")
	}
}

func TestEtcdJoinAndTiming(t *testing.T) {
	c := ControlPlane{
		Images:           ControlPlaneImages{Etcd: "e", APIServer: "a", ControllerManager: "c", Scheduler: "s"},
		EtcdVersion:      "3.7.0",
		NodeName:         "cp2",
		AdvertiseAddress: "10.0.0.2",
		ServiceSubnet:    "10.96.0.0/12",
	}
	etcdFlags := func(c ControlPlane) map[string]string {
		files, err := RenderControlPlane(c)
		if err != nil {
			t.Fatal(err)
		}
		pod := parsePod(t, files[0])
		return flagMap(t, "etcd.yaml", pod.Spec.Containers[0].Command[1:])
	}
	one := etcdFlags(c)
	wantFlags(t, "one member", one, map[string]string{"heartbeat-interval": "50", "election-timeout": "250", "initial-cluster": "cp2=https://10.0.0.2:2380"})
	if _, ok := one["initial-cluster-state"]; ok {
		t.Error("a new cluster's member has --initial-cluster-state")
	}
	c.EtcdMembers, c.EtcdJoin = 3, true
	c.EtcdInitialCluster = "cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380"
	wantFlags(t, "joining member", etcdFlags(c), map[string]string{
		"heartbeat-interval": "100", "election-timeout": "1000",
		"initial-cluster": c.EtcdInitialCluster, "initial-cluster-state": "existing",
	})
}
