package templates

import (
	"bytes"
	"flag"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCase is one host configuration rendered through every family.
type goldenCase struct {
	name         string
	controlPlane ControlPlane
	kubelet      Kubelet
	containerd   Containerd
}

func images(etcdTag string) ControlPlaneImages {
	return ControlPlaneImages{
		Etcd:              "registry.k8s.io/etcd:" + etcdTag,
		APIServer:         "registry.k8s.io/kube-apiserver:v1.35.4",
		ControllerManager: "registry.k8s.io/kube-controller-manager:v1.35.4",
		Scheduler:         "registry.k8s.io/kube-scheduler:v1.35.4",
	}
}

var debianCACertDirs = []string{"/etc/ca-certificates", "/usr/local/share/ca-certificates", "/usr/share/ca-certificates"}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			// The build machines: Debian 12, no systemd, cgroup v1, root
			// without CAP_SYS_RESOURCE, Debian's containerd 1.6 and CNI
			// plugins, an IPv4 node address.
			name: "debian-cgroupv1-nosysresource",
			controlPlane: ControlPlane{
				Images:           images("3.6.6-0"),
				EtcdVersion:      "3.6.6",
				NodeName:         "cp1",
				AdvertiseAddress: "192.0.2.10",
				ServiceSubnet:    "10.96.0.0/12",
				PodSubnet:        "10.244.0.0/16",
				CACertDirs:       debianCACertDirs,
			},
			kubelet: Kubelet{
				NodeName:     "cp1",
				NodeIP:       "192.0.2.10",
				CgroupDriver: CgroupDriverCgroupfs,
				CgroupV1:     true,
				ClusterDNS:   []string{"10.96.0.10"},
			},
			containerd: Containerd{
				SandboxImage:        "registry.k8s.io/pause:3.10.1",
				RestrictOOMScoreAdj: true,
				CNIBinDir:           layout.DebianCNIBinDir,
			},
		},
		{
			// A systemd host on cgroup v2 with containerd 2.x from a
			// bundle and systemd-resolved.
			name: "systemd-cgroupv2-containerd2",
			controlPlane: ControlPlane{
				Images:             images("3.6.6-0"),
				EtcdVersion:        "v3.6.6",
				NodeName:           "cp1.example.com",
				AdvertiseAddress:   "198.51.100.7",
				BindPort:           8443,
				ServiceSubnet:      "10.112.0.0/16",
				PodSubnet:          "10.128.0.0/14",
				ClusterName:        "prod",
				DNSDomain:          "prod.internal",
				CACertDirs:         []string{"/etc/pki/ca-trust", "/etc/pki/tls/certs"},
				HealthCheckTimeout: 5 * time.Minute,
				PKIDir:             "/srv/kubernetes/pki",
			},
			kubelet: Kubelet{
				NodeName:      "cp1.example.com",
				NodeIP:        "198.51.100.7",
				CgroupDriver:  CgroupDriverSystemd,
				ClusterDNS:    []string{"10.112.0.10"},
				ClusterDomain: "prod.internal",
				ResolvConf:    "/run/systemd/resolve/resolv.conf",
				ClientCAFile:  "/srv/kubernetes/pki/ca.crt",
			},
			containerd: Containerd{
				ConfigVersion: 3,
				SandboxImage:  "registry.k8s.io/pause:3.10.1",
				SystemdCgroup: true,
				CNIBinDir:     layout.CNIBinDir,
			},
		},
		{
			// A node container on the build machines: etcd 3.5, its own
			// cgroup root, no disk eviction, swap allowed, a containerd of
			// its own beside docker's, crun, extra flags.
			name: "node-container-etcd35",
			controlPlane: ControlPlane{
				Images:           images("3.5.35-0"),
				EtcdVersion:      "v3.5.35",
				NodeName:         "kforge-cp",
				AdvertiseAddress: "172.18.0.2",
				ServiceSubnet:    "10.96.0.0/12",
				APIServerExtraArgs: map[string]string{
					"v":                    "2",
					"--authorization-mode": "Node,RBAC,Webhook",
				},
				ControllerManagerExtraArgs: map[string]string{"bind-address": "0.0.0.0"},
				SchedulerExtraArgs:         map[string]string{"bind-address": "172.18.0.2"},
				EtcdExtraArgs:              map[string]string{"quota-backend-bytes": "8589934592"},
			},
			kubelet: Kubelet{
				NodeName:                 "kforge-cp",
				NodeIP:                   "172.18.0.2",
				CgroupDriver:             CgroupDriverCgroupfs,
				CgroupV1:                 true,
				CgroupRoot:               "/kubelet-kforge-cp",
				DisableDiskEviction:      true,
				AllowSwap:                true,
				ClusterDNS:               []string{"10.96.0.10"},
				ContainerRuntimeEndpoint: "unix:///run/kforge/containerd/containerd.sock",
				BinaryPath:               "/opt/kforge/bin/kubelet",
				ExtraArgs:                map[string]string{"v": "2"},
			},
			containerd: Containerd{
				Root:                "/var/lib/kforge/containerd",
				State:               "/run/kforge/containerd",
				Address:             "/run/kforge/containerd/containerd.sock",
				ConfigPath:          "/etc/kforge/containerd/config.toml",
				SandboxImage:        "registry.k8s.io/pause:3.10.1",
				RestrictOOMScoreAdj: true,
				CNIBinDir:           layout.CNIBinDir,
				RuntimeBinary:       "/usr/bin/crun",
				RegistryAuths:       []RegistryAuth{{Host: "harbor.example:5000", Username: "robot$ci", Password: `p"w\`}},
			},
		},
		{
			// An IPv6 single-stack control plane.
			name: "ipv6",
			controlPlane: ControlPlane{
				Images:           images("3.6.6-0"),
				EtcdVersion:      "3.6.6",
				NodeName:         "cp6",
				AdvertiseAddress: "2001:db8::10",
				ServiceSubnet:    "fd00:10:96::/108",
				PodSubnet:        "fd00:10:244::/56",
			},
			kubelet: Kubelet{
				NodeName:     "cp6",
				NodeIP:       "2001:db8::10",
				CgroupDriver: CgroupDriverSystemd,
				ClusterDNS:   []string{"fd00:10:96::a"},
			},
			containerd: Containerd{
				SandboxImage:  "registry.k8s.io/pause:3.10.1",
				SystemdCgroup: true,
				CNIBinDir:     layout.CNIBinDir,
			},
		},
	}
}

// renderAll renders every family of a case.
func renderAll(t *testing.T, c goldenCase) []host.File {
	t.Helper()
	var all []host.File
	cp, err := RenderControlPlane(c.controlPlane)
	if err != nil {
		t.Fatal(err)
	}
	kl, err := RenderKubelet(c.kubelet)
	if err != nil {
		t.Fatal(err)
	}
	cd, err := RenderContainerd(c.containerd)
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, cp...)
	all = append(all, kl...)
	return append(all, cd...)
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join("testdata", c.name)
			seen := map[string]bool{}
			for _, f := range renderAll(t, c) {
				name := path.Base(f.Path)
				if seen[name] {
					t.Fatalf("two rendered files are both named %s", name)
				}
				seen[name] = true
				golden := filepath.Join(dir, name)
				if *update {
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./templates -update)", err)
				}
				if !bytes.Equal(f.Data, want) {
					t.Errorf("%s differs from %s (run go test ./templates -update and review the diff)\n--- got\n%s", f.Path, golden, f.Data)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if !seen[e.Name()] {
					t.Errorf("%s is in %s but no longer rendered; delete it", e.Name(), dir)
				}
			}
		})
	}
}
