package templates

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	corev1 "k8s.io/api/core/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// parsePod decodes a manifest strictly: an unknown or misspelt field fails.
func parsePod(t *testing.T, f host.File) *corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(f.Data, &pod); err != nil {
		t.Fatalf("%s does not decode strictly as a Pod: %v", f.Path, err)
	}
	return &pod
}

// flagMap splits --name=value arguments; a flag given twice fails.
func flagMap(t *testing.T, file string, args []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !strings.HasPrefix(a, "--") {
			t.Errorf("%s: argument %q is not --name=value", file, a)
			continue
		}
		if _, dup := m[name]; dup {
			t.Errorf("%s: --%s is given twice", file, name)
		}
		m[name] = value
	}
	return m
}

// wantFlags checks that each flag has the given value.
func wantFlags(t *testing.T, file string, got, want map[string]string) {
	t.Helper()
	for name, v := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: --%s is missing, want %q", file, name, v)
		case g != v:
			t.Errorf("%s: --%s=%s, want %s", file, name, g, v)
		}
	}
}

// podShape checks what every kforge static pod has in common, that every
// mount has its hostPath volume and every volume is mounted, and that every
// file a flag names under a kforge directory is inside a mount.
func podShape(t *testing.T, f host.File, pod *corev1.Pod, component, image string, dirs []string) map[string]string {
	t.Helper()
	if pod.APIVersion != "v1" || pod.Kind != "Pod" {
		t.Errorf("%s: apiVersion/kind %s/%s", f.Path, pod.APIVersion, pod.Kind)
	}
	if pod.Name != component || pod.Namespace != "kube-system" {
		t.Errorf("%s: pod %s/%s, want kube-system/%s", f.Path, pod.Namespace, pod.Name, component)
	}
	if pod.Labels["component"] != component || pod.Labels["tier"] != "control-plane" {
		t.Errorf("%s: labels %v", f.Path, pod.Labels)
	}
	s := pod.Spec
	if !s.HostNetwork || s.PriorityClassName != "system-node-critical" || s.Priority == nil || *s.Priority != 2000001000 {
		t.Errorf("%s: hostNetwork %v, priorityClassName %q, priority %v", f.Path, s.HostNetwork, s.PriorityClassName, s.Priority)
	}
	if s.SecurityContext == nil || s.SecurityContext.SeccompProfile == nil || s.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile is not RuntimeDefault", f.Path)
	}
	if len(s.Containers) != 1 {
		t.Fatalf("%s: %d containers", f.Path, len(s.Containers))
	}
	c := s.Containers[0]
	if c.Name != component || c.Image != image || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("%s: container %s image %s pull %s", f.Path, c.Name, c.Image, c.ImagePullPolicy)
	}
	if len(c.Command) == 0 || c.Command[0] != component {
		t.Fatalf("%s: command %v does not start with %s", f.Path, c.Command, component)
	}
	if c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s: no CPU request", f.Path)
	}
	if c.LivenessProbe == nil || c.StartupProbe == nil {
		t.Errorf("%s: liveness or startup probe missing", f.Path)
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range s.Volumes {
		if v.HostPath == nil || v.HostPath.Type == nil {
			t.Errorf("%s: volume %s is not a typed hostPath", f.Path, v.Name)
			continue
		}
		volumes[v.Name] = v
	}
	mounted := map[string]bool{}
	var mountPaths []string
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("%s: volumeMount %s has no volume", f.Path, m.Name)
			continue
		}
		if v.HostPath.Path != m.MountPath {
			t.Errorf("%s: volume %s is host %s mounted at %s", f.Path, m.Name, v.HostPath.Path, m.MountPath)
		}
		mounted[m.Name] = true
		mountPaths = append(mountPaths, m.MountPath)
	}
	for name := range volumes {
		if !mounted[name] {
			t.Errorf("%s: volume %s is never mounted", f.Path, name)
		}
	}

	flags := flagMap(t, f.Path, c.Command[1:])
	for name, v := range flags {
		for _, value := range strings.Split(v, ",") {
			if !path.IsAbs(value) || !slices.ContainsFunc(dirs, func(d string) bool { return within(value, d) }) {
				continue
			}
			if !slices.ContainsFunc(mountPaths, func(m string) bool { return within(value, m) }) {
				t.Errorf("%s: --%s=%s is in no volumeMount", f.Path, name, value)
			}
		}
	}
	return flags
}

func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// wantProbe checks one probe's target.
func wantProbe(t *testing.T, file, kind string, p *corev1.Probe, host string, port int, pathName string, scheme corev1.URIScheme) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no %s HTTP probe", file, kind)
		return
	}
	g := p.HTTPGet
	if g.Host != host || g.Port.IntValue() != port || g.Path != pathName || g.Scheme != scheme {
		t.Errorf("%s: %s probe %s://%s:%s%s, want %s://%s:%d%s", file, kind, g.Scheme, g.Host, g.Port.String(), g.Path, scheme, host, port, pathName)
	}
}

func TestControlPlaneManifestsParse(t *testing.T) {
	for _, gc := range goldenCases() {
		t.Run(gc.name, func(t *testing.T) {
			files, err := RenderControlPlane(gc.controlPlane)
			if err != nil {
				t.Fatal(err)
			}
			c := gc.controlPlane.withDefaults()
			dirs := []string{c.PKIDir, c.KubeconfigDir, c.EtcdDataDir}
			byName := map[string]host.File{}
			for _, f := range files {
				if f.Mode != 0o600 || path.Dir(f.Path) != c.ManifestDir {
					t.Errorf("%s: mode %v, want 0600 in %s", f.Path, f.Mode, c.ManifestDir)
				}
				byName[path.Base(f.Path)] = f
			}
			if len(byName) != 4 {
				t.Fatalf("rendered %d manifests, want 4", len(files))
			}
			loop := "127.0.0.1"
			if strings.Contains(c.AdvertiseAddress, ":") {
				loop = "::1"
			}
			hostPort := func(host string, port int) string {
				if strings.Contains(host, ":") {
					host = "[" + host + "]"
				}
				return fmt.Sprintf("%s:%d", host, port)
			}

			f := byName["etcd.yaml"]
			pod := parsePod(t, f)
			fl := podShape(t, f, pod, "etcd", c.Images.Etcd, dirs)
			clientURL := "https://" + hostPort(c.AdvertiseAddress, 2379)
			peerURL := "https://" + hostPort(c.AdvertiseAddress, 2380)
			want := map[string]string{
				"name":                        c.NodeName,
				"advertise-client-urls":       clientURL,
				"listen-client-urls":          "https://" + hostPort(loop, 2379) + "," + clientURL,
				"listen-peer-urls":            peerURL,
				"initial-advertise-peer-urls": peerURL,
				"initial-cluster":             c.NodeName + "=" + peerURL,
				"listen-metrics-urls":         "http://" + hostPort(loop, 2381),
				"data-dir":                    c.EtcdDataDir,
				"cert-file":                   c.PKIDir + "/etcd/server.crt",
				"key-file":                    c.PKIDir + "/etcd/server.key",
				"trusted-ca-file":             c.PKIDir + "/etcd/ca.crt",
				"peer-cert-file":              c.PKIDir + "/etcd/peer.crt",
				"peer-key-file":               c.PKIDir + "/etcd/peer.key",
				"peer-trusted-ca-file":        c.PKIDir + "/etcd/ca.crt",
				"client-cert-auth":            "true",
				"peer-client-cert-auth":       "true",
				"snapshot-count":              "10000",
				"heartbeat-interval":          "50",
				"election-timeout":            "250",
				"cipher-suites":               layout.TLSCipherSuites,
				"tls-min-version":             "TLS1.2",
			}
			if strings.HasPrefix(strings.TrimPrefix(c.EtcdVersion, "v"), "3.5.") {
				want["experimental-initial-corrupt-check"] = "true"
				want["experimental-watch-progress-notify-interval"] = "5s"
				if _, ok := fl["feature-gates"]; ok {
					t.Errorf("etcd %s does not take --feature-gates", c.EtcdVersion)
				}
			} else {
				want["feature-gates"] = "InitialCorruptCheck=true"
				want["watch-progress-notify-interval"] = "5s"
				if _, ok := fl["experimental-initial-corrupt-check"]; ok {
					t.Errorf("etcd %s no longer takes --experimental-initial-corrupt-check", c.EtcdVersion)
				}
			}
			for k, v := range c.EtcdExtraArgs {
				want[strings.TrimLeft(k, "-")] = v
			}
			wantFlags(t, f.Path, fl, want)
			ct := pod.Spec.Containers[0]
			wantProbe(t, f.Path, "liveness", ct.LivenessProbe, loop, 2381, "/livez", corev1.URISchemeHTTP)
			wantProbe(t, f.Path, "readiness", ct.ReadinessProbe, loop, 2381, "/readyz", corev1.URISchemeHTTP)
			wantProbe(t, f.Path, "startup", ct.StartupProbe, loop, 2381, "/readyz", corev1.URISchemeHTTP)
			if ct.Resources.Requests.Memory().String() != "100Mi" {
				t.Errorf("%s: memory request %s", f.Path, ct.Resources.Requests.Memory())
			}
			if got := pod.Annotations[AnnotationEtcdAdvertiseURLs]; got != clientURL {
				t.Errorf("%s: annotation %s=%q, want %q", f.Path, AnnotationEtcdAdvertiseURLs, got, clientURL)
			}

			f = byName["kube-apiserver.yaml"]
			pod = parsePod(t, f)
			fl = podShape(t, f, pod, "kube-apiserver", c.Images.APIServer, dirs)
			want = map[string]string{
				"advertise-address":                       c.AdvertiseAddress,
				"allow-privileged":                        "true",
				"audit-log-maxage":                        "30",
				"audit-log-maxbackup":                     "10",
				"audit-log-maxsize":                       "100",
				"audit-log-path":                          layout.AuditLog,
				"audit-policy-file":                       c.KubeconfigDir + "/audit-policy.yaml",
				"encryption-provider-config":              c.PKIDir + "/encryption-config.yaml",
				"profiling":                               "false",
				"service-account-extend-token-expiration": "false",
				"tls-cipher-suites":                       layout.TLSCipherSuites,
				"tls-min-version":                         layout.TLSMinVersion,
				"authorization-mode":                      "Node,RBAC",
				"client-ca-file":                          c.PKIDir + "/ca.crt",
				"enable-admission-plugins":                "NodeRestriction",
				"enable-bootstrap-token-auth":             "true",
				"etcd-cafile":                             c.PKIDir + "/etcd/ca.crt",
				"etcd-certfile":                           c.PKIDir + "/apiserver-etcd-client.crt",
				"etcd-keyfile":                            c.PKIDir + "/apiserver-etcd-client.key",
				"etcd-servers":                            "https://" + hostPort(loop, 2379),
				"kubelet-client-certificate":              c.PKIDir + "/apiserver-kubelet-client.crt",
				"kubelet-client-key":                      c.PKIDir + "/apiserver-kubelet-client.key",
				"kubelet-preferred-address-types":         "InternalIP,ExternalIP,Hostname",
				"proxy-client-cert-file":                  c.PKIDir + "/front-proxy-client.crt",
				"proxy-client-key-file":                   c.PKIDir + "/front-proxy-client.key",
				"requestheader-allowed-names":             "front-proxy-client",
				"requestheader-client-ca-file":            c.PKIDir + "/front-proxy-ca.crt",
				"requestheader-extra-headers-prefix":      "X-Remote-Extra-",
				"requestheader-group-headers":             "X-Remote-Group",
				"requestheader-username-headers":          "X-Remote-User",
				"secure-port":                             fmt.Sprint(c.BindPort),
				"service-account-issuer":                  "https://kubernetes.default.svc." + c.DNSDomain,
				"service-account-key-file":                c.PKIDir + "/sa.pub",
				"service-account-signing-key-file":        c.PKIDir + "/sa.key",
				"service-cluster-ip-range":                c.ServiceSubnet,
				"tls-cert-file":                           c.PKIDir + "/apiserver.crt",
				"tls-private-key-file":                    c.PKIDir + "/apiserver.key",
			}
			for k, v := range c.APIServerExtraArgs {
				want[strings.TrimLeft(k, "-")] = v
			}
			wantFlags(t, f.Path, fl, want)
			ct = pod.Spec.Containers[0]
			wantProbe(t, f.Path, "liveness", ct.LivenessProbe, c.AdvertiseAddress, c.BindPort, "/livez", corev1.URISchemeHTTPS)
			wantProbe(t, f.Path, "readiness", ct.ReadinessProbe, c.AdvertiseAddress, c.BindPort, "/readyz", corev1.URISchemeHTTPS)
			wantProbe(t, f.Path, "startup", ct.StartupProbe, c.AdvertiseAddress, c.BindPort, "/livez", corev1.URISchemeHTTPS)
			if got, want := pod.Annotations[AnnotationAPIServerEndpoint], hostPort(c.AdvertiseAddress, c.BindPort); got != want {
				t.Errorf("%s: annotation %s=%q, want %q", f.Path, AnnotationAPIServerEndpoint, got, want)
			}
			wantMountsFor(t, f.Path, ct, append([]string{c.PKIDir, "/etc/ssl/certs"}, c.CACertDirs...))

			f = byName["kube-controller-manager.yaml"]
			pod = parsePod(t, f)
			fl = podShape(t, f, pod, "kube-controller-manager", c.Images.ControllerManager, dirs)
			kc := c.KubeconfigDir + "/controller-manager.conf"
			want = map[string]string{
				"authentication-kubeconfig":        kc,
				"authorization-kubeconfig":         kc,
				"kubeconfig":                       kc,
				"bind-address":                     "127.0.0.1",
				"leader-elect":                     "true",
				"profiling":                        "false",
				"tls-cipher-suites":                layout.TLSCipherSuites,
				"tls-min-version":                  layout.TLSMinVersion,
				"client-ca-file":                   c.PKIDir + "/ca.crt",
				"requestheader-client-ca-file":     c.PKIDir + "/front-proxy-ca.crt",
				"root-ca-file":                     c.PKIDir + "/ca.crt",
				"service-account-private-key-file": c.PKIDir + "/sa.key",
				"cluster-signing-cert-file":        c.PKIDir + "/ca.crt",
				"cluster-signing-key-file":         c.PKIDir + "/ca.key",
				"use-service-account-credentials":  "true",
				"controllers":                      "*,bootstrapsigner,tokencleaner",
				"cluster-name":                     c.ClusterName,
			}
			if c.PodSubnet != "" {
				want["allocate-node-cidrs"] = "true"
				want["cluster-cidr"] = c.PodSubnet
				want["service-cluster-ip-range"] = c.ServiceSubnet
			} else if _, ok := fl["allocate-node-cidrs"]; ok {
				t.Errorf("%s: --allocate-node-cidrs without a pod subnet", f.Path)
			}
			for k, v := range c.ControllerManagerExtraArgs {
				want[k] = v
			}
			wantFlags(t, f.Path, fl, want)
			ct = pod.Spec.Containers[0]
			host := probeHostFor(fl["bind-address"])
			wantProbe(t, f.Path, "liveness", ct.LivenessProbe, host, 10257, "/healthz", corev1.URISchemeHTTPS)
			wantProbe(t, f.Path, "startup", ct.StartupProbe, host, 10257, "/healthz", corev1.URISchemeHTTPS)
			wantMountsFor(t, f.Path, ct, append([]string{kc, "/usr/libexec/kubernetes/kubelet-plugins/volume/exec", "/etc/ssl/certs"}, c.CACertDirs...))

			f = byName["kube-scheduler.yaml"]
			pod = parsePod(t, f)
			fl = podShape(t, f, pod, "kube-scheduler", c.Images.Scheduler, dirs)
			kc = c.KubeconfigDir + "/scheduler.conf"
			want = map[string]string{
				"authentication-kubeconfig": kc,
				"authorization-kubeconfig":  kc,
				"kubeconfig":                kc,
				"bind-address":              "127.0.0.1",
				"leader-elect":              "true",
				"profiling":                 "false",
				"tls-cipher-suites":         layout.TLSCipherSuites,
				"tls-min-version":           layout.TLSMinVersion,
			}
			for k, v := range c.SchedulerExtraArgs {
				want[k] = v
			}
			wantFlags(t, f.Path, fl, want)
			ct = pod.Spec.Containers[0]
			host = probeHostFor(fl["bind-address"])
			wantProbe(t, f.Path, "liveness", ct.LivenessProbe, host, 10259, "/healthz", corev1.URISchemeHTTPS)
			wantProbe(t, f.Path, "startup", ct.StartupProbe, host, 10259, "/healthz", corev1.URISchemeHTTPS)
			wantMountsFor(t, f.Path, ct, []string{kc})

			for _, f := range files {
				pod := parsePod(t, f)
				if got, want := pod.Spec.Containers[0].StartupProbe.FailureThreshold, int32(c.HealthCheckTimeout.Seconds()); got != want {
					t.Errorf("%s: startup failureThreshold %d, want %d for %s", f.Path, got, want, c.HealthCheckTimeout)
				}
				if p := pod.Spec.Containers[0].StartupProbe; p.PeriodSeconds != 1 || p.InitialDelaySeconds != 0 {
					t.Errorf("%s: startup probe every %ds after %ds, want every second from the start", f.Path, p.PeriodSeconds, p.InitialDelaySeconds)
				}
			}
		})
	}
}

func probeHostFor(bind string) string {
	if bind == "0.0.0.0" || bind == "::" {
		return ""
	}
	return bind
}

// wantMountsFor checks that each host path is mounted.
func wantMountsFor(t *testing.T, file string, c corev1.Container, paths []string) {
	t.Helper()
	for _, p := range paths {
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == p }) {
			t.Errorf("%s: %s is not mounted", file, p)
		}
	}
}

func TestKubeletFilesParse(t *testing.T) {
	for _, gc := range goldenCases() {
		t.Run(gc.name, func(t *testing.T) {
			files, err := RenderKubelet(gc.kubelet)
			if err != nil {
				t.Fatal(err)
			}
			k := gc.kubelet.withDefaults()
			byPath := map[string][]byte{}
			for _, f := range files {
				byPath[f.Path] = f.Data
			}

			var kc kubeletv1beta1.KubeletConfiguration
			if err := yaml.UnmarshalStrict(byPath[k.ConfigPath], &kc); err != nil {
				t.Fatalf("%s does not decode strictly as a KubeletConfiguration: %v", k.ConfigPath, err)
			}
			if kc.APIVersion != "kubelet.config.k8s.io/v1beta1" || kc.Kind != "KubeletConfiguration" {
				t.Errorf("apiVersion/kind %s/%s", kc.APIVersion, kc.Kind)
			}
			if kc.FailCgroupV1 == nil {
				t.Errorf("failCgroupV1 is unset; kubelet v1.35 defaults it to true")
			} else if *kc.FailCgroupV1 == gc.kubelet.CgroupV1 {
				t.Errorf("failCgroupV1: %v on a host where cgroup v1 is %v", *kc.FailCgroupV1, gc.kubelet.CgroupV1)
			}
			if kc.CgroupDriver != k.CgroupDriver {
				t.Errorf("cgroupDriver %q, want %q", kc.CgroupDriver, k.CgroupDriver)
			}
			if !slices.Equal(kc.ClusterDNS, k.ClusterDNS) || kc.ClusterDomain != k.ClusterDomain {
				t.Errorf("clusterDNS %v %s, want %v %s", kc.ClusterDNS, kc.ClusterDomain, k.ClusterDNS, k.ClusterDomain)
			}
			if kc.CgroupRoot != k.CgroupRoot {
				t.Errorf("cgroupRoot %q, want %q", kc.CgroupRoot, k.CgroupRoot)
			}
			if kc.StaticPodPath != k.StaticPodPath || kc.ContainerRuntimeEndpoint != k.ContainerRuntimeEndpoint {
				t.Errorf("staticPodPath %q containerRuntimeEndpoint %q", kc.StaticPodPath, kc.ContainerRuntimeEndpoint)
			}
			if kc.ResolverConfig == nil || *kc.ResolverConfig != k.ResolvConf {
				t.Errorf("resolvConf %v, want %s", kc.ResolverConfig, k.ResolvConf)
			}
			a := kc.Authentication
			if a.Anonymous.Enabled == nil || *a.Anonymous.Enabled || a.Webhook.Enabled == nil || !*a.Webhook.Enabled || a.X509.ClientCAFile != k.ClientCAFile {
				t.Errorf("authentication %+v", a)
			}
			if kc.Authorization.Mode != kubeletv1beta1.KubeletAuthorizationModeWebhook {
				t.Errorf("authorization mode %q", kc.Authorization.Mode)
			}
			if !kc.RotateCertificates || !kc.ServerTLSBootstrap {
				t.Errorf("rotateCertificates %v serverTLSBootstrap %v", kc.RotateCertificates, kc.ServerTLSBootstrap)
			}
			if kc.HealthzBindAddress != "127.0.0.1" || kc.HealthzPort == nil || *kc.HealthzPort != 10248 {
				t.Errorf("healthz %s:%v", kc.HealthzBindAddress, kc.HealthzPort)
			}
			if k.AllowSwap != (kc.FailSwapOn != nil && !*kc.FailSwapOn) {
				t.Errorf("failSwapOn %v with AllowSwap %v", kc.FailSwapOn, k.AllowSwap)
			}
			if k.DisableDiskEviction != (kc.EvictionHard["nodefs.available"] == "0%") {
				t.Errorf("evictionHard %v with DisableDiskEviction %v", kc.EvictionHard, k.DisableDiskEviction)
			}

			env := string(byPath[k.FlagsPath])
			var line string
			for _, l := range strings.Split(env, "\n") {
				if strings.HasPrefix(l, "KUBELET_KFORGE_ARGS=") {
					line = l
				}
			}
			v, ok := strings.CutPrefix(line, `KUBELET_KFORGE_ARGS="`)
			if !ok || !strings.HasSuffix(v, `"`) {
				t.Fatalf("%s has no KUBELET_KFORGE_ARGS=\"...\" line:\n%s", k.FlagsPath, env)
			}
			fl := flagMap(t, k.FlagsPath, strings.Fields(strings.TrimSuffix(v, `"`)))
			want := map[string]string{
				"config":               k.ConfigPath,
				"kubeconfig":           k.KubeconfigPath,
				"bootstrap-kubeconfig": k.BootstrapKubeconfigPath,
				"hostname-override":    k.NodeName,
				"node-ip":              k.NodeIP,
			}
			for n, v := range k.ExtraArgs {
				want[n] = v
			}
			wantFlags(t, k.FlagsPath, fl, want)

			dropIn := string(byPath[k.DropInPath])
			for _, s := range []string{"[Service]", "EnvironmentFile=-" + k.FlagsPath, "ExecStart=\n", "ExecStart=" + k.BinaryPath + " $KUBELET_KFORGE_ARGS"} {
				if !strings.Contains(dropIn, s) {
					t.Errorf("%s lacks %q:\n%s", k.DropInPath, s, dropIn)
				}
			}
			if path.Dir(k.DropInPath) != k.UnitPath+".d" {
				t.Errorf("drop-in %s is not in %s.d", k.DropInPath, k.UnitPath)
			}
			unit := string(byPath[k.UnitPath])
			for _, s := range []string{"[Unit]", "[Service]", "ExecStart=" + k.BinaryPath + "\n", "Restart=always", "[Install]", "WantedBy=multi-user.target"} {
				if !strings.Contains(unit, s) {
					t.Errorf("%s lacks %q:\n%s", k.UnitPath, s, unit)
				}
			}
		})
	}
}

// containerdRuntime is the runc runtime table, the same in both formats.
type containerdRuntime struct {
	RuntimeType string `toml:"runtime_type"`
	Options     struct {
		SystemdCgroup bool
		BinaryName    string
	} `toml:"options"`
}

type containerdRuntimes struct {
	DefaultRuntimeName string                       `toml:"default_runtime_name"`
	Snapshotter        string                       `toml:"snapshotter"`
	Runtimes           map[string]containerdRuntime `toml:"runtimes"`
}

// containerdRegistry is CRI's registry table as containerd reads it.
type containerdRegistry struct {
	ConfigPath string `toml:"config_path"`
	Configs    map[string]struct {
		Auth struct {
			Username string `toml:"username"`
			Password string `toml:"password"`
		} `toml:"auth"`
	} `toml:"configs"`
}

type containerdTop struct {
	Version int    `toml:"version"`
	Root    string `toml:"root"`
	State   string `toml:"state"`
	GRPC    struct {
		Address string `toml:"address"`
	} `toml:"grpc"`
}

// containerdV2 is the part of containerd 1.6/1.7's config that kforge
// writes, keyed as containerd reads it.
type containerdV2 struct {
	containerdTop
	Plugins struct {
		CRI struct {
			SandboxImage        string             `toml:"sandbox_image"`
			RestrictOOMScoreAdj bool               `toml:"restrict_oom_score_adj"`
			Registry            containerdRegistry `toml:"registry"`
			Containerd          containerdRuntimes `toml:"containerd"`
			CNI                 struct {
				BinDir  string `toml:"bin_dir"`
				ConfDir string `toml:"conf_dir"`
			} `toml:"cni"`
		} `toml:"io.containerd.grpc.v1.cri"`
	} `toml:"plugins"`
}

// containerdV3 is the same for containerd 2.x.
type containerdV3 struct {
	containerdTop
	Plugins struct {
		Images struct {
			Snapshotter  string `toml:"snapshotter"`
			PinnedImages struct {
				Sandbox string `toml:"sandbox"`
			} `toml:"pinned_images"`
			Registry containerdRegistry `toml:"registry"`
		} `toml:"io.containerd.cri.v1.images"`
		Runtime struct {
			RestrictOOMScoreAdj bool               `toml:"restrict_oom_score_adj"`
			Containerd          containerdRuntimes `toml:"containerd"`
			CNI                 struct {
				BinDirs []string `toml:"bin_dirs"`
				ConfDir string   `toml:"conf_dir"`
			} `toml:"cni"`
		} `toml:"io.containerd.cri.v1.runtime"`
	} `toml:"plugins"`
}

func TestContainerdConfigParse(t *testing.T) {
	for _, gc := range goldenCases() {
		t.Run(gc.name, func(t *testing.T) {
			files, err := RenderContainerd(gc.containerd)
			if err != nil {
				t.Fatal(err)
			}
			c := gc.containerd.withDefaults()
			if len(files) != 1 || files[0].Path != c.ConfigPath {
				t.Fatalf("rendered %v, want one file at %s", files, c.ConfigPath)
			}
			data := files[0].Data
			dec := func(v any) {
				if err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(v); err != nil {
					t.Fatalf("%s does not decode strictly: %v\n%s", c.ConfigPath, err, data)
				}
			}
			var (
				top                   containerdTop
				sandbox, snap, cniBin string
				cniConf               string
				restrict              bool
				runtimes              containerdRuntimes
				registry              containerdRegistry
			)
			switch c.ConfigVersion {
			case 2:
				var v containerdV2
				dec(&v)
				p := v.Plugins.CRI
				top, sandbox, snap, restrict, runtimes = v.containerdTop, p.SandboxImage, p.Containerd.Snapshotter, p.RestrictOOMScoreAdj, p.Containerd
				registry = p.Registry
				cniBin, cniConf = p.CNI.BinDir, p.CNI.ConfDir
			case 3:
				var v containerdV3
				dec(&v)
				p := v.Plugins
				top, sandbox, snap, restrict, runtimes = v.containerdTop, p.Images.PinnedImages.Sandbox, p.Images.Snapshotter, p.Runtime.RestrictOOMScoreAdj, p.Runtime.Containerd
				registry = p.Images.Registry
				if len(p.Runtime.CNI.BinDirs) != 1 {
					t.Fatalf("bin_dirs %v", p.Runtime.CNI.BinDirs)
				}
				cniBin, cniConf = p.Runtime.CNI.BinDirs[0], p.Runtime.CNI.ConfDir
			}
			if top.Version != c.ConfigVersion || top.Root != c.Root || top.State != c.State || top.GRPC.Address != c.Address {
				t.Errorf("version %d root %s state %s address %s", top.Version, top.Root, top.State, top.GRPC.Address)
			}
			if sandbox != c.SandboxImage || snap != c.Snapshotter {
				t.Errorf("sandbox %q snapshotter %q", sandbox, snap)
			}
			if restrict != c.RestrictOOMScoreAdj {
				t.Errorf("restrict_oom_score_adj %v, want %v", restrict, c.RestrictOOMScoreAdj)
			}
			if cniBin != c.CNIBinDir || cniConf != c.CNIConfDir {
				t.Errorf("cni %s %s", cniBin, cniConf)
			}
			if registry.ConfigPath != layout.ContainerdCertsDir || len(registry.Configs) != len(c.RegistryAuths) {
				t.Errorf("registry %+v", registry)
			}
			for _, a := range c.RegistryAuths {
				got := registry.Configs[a.Host].Auth
				if got.Username != a.Username || got.Password != a.Password {
					t.Errorf("auth of %s: %+v", a.Host, got)
				}
			}
			if want := fs.FileMode(layout.PublicMode); len(c.RegistryAuths) > 0 {
				if files[0].Mode != layout.SecretMode {
					t.Errorf("config with credentials has mode %o, want 0600", files[0].Mode)
				}
			} else if files[0].Mode != want {
				t.Errorf("mode %o, want %o", files[0].Mode, want)
			}
			runc, ok := runtimes.Runtimes[runtimes.DefaultRuntimeName]
			if !ok || runtimes.DefaultRuntimeName != "runc" || runc.RuntimeType != "io.containerd.runc.v2" {
				t.Fatalf("default runtime %q: %+v", runtimes.DefaultRuntimeName, runtimes.Runtimes)
			}
			if runc.Options.SystemdCgroup != c.SystemdCgroup || runc.Options.BinaryName != c.RuntimeBinary {
				t.Errorf("runc options %+v", runc.Options)
			}

			// The kubelet and containerd of one case must agree.
			if runc.Options.SystemdCgroup != (gc.kubelet.CgroupDriver == CgroupDriverSystemd) {
				t.Errorf("SystemdCgroup %v with kubelet cgroupDriver %s", runc.Options.SystemdCgroup, gc.kubelet.CgroupDriver)
			}
			if ep := gc.kubelet.withDefaults().ContainerRuntimeEndpoint; ep != "unix://"+c.Address {
				t.Errorf("kubelet talks to %s, containerd listens on %s", ep, c.Address)
			}
		})
	}
}

// hostsFile is the part of containerd's hosts.toml that kforge writes,
// keyed as containerd's remotes/docker/config reads it.
type hostsFile struct {
	Server     string `toml:"server"`
	CA         string `toml:"ca"`
	SkipVerify bool   `toml:"skip_verify"`
	Host       map[string]struct {
		Capabilities []string `toml:"capabilities"`
		CA           string   `toml:"ca"`
		SkipVerify   bool     `toml:"skip_verify"`
	} `toml:"host"`
}

func TestRegistryHostsParse(t *testing.T) {
	r := RegistryHosts{
		Registry: "harbor.example:5000",
		Server:   "https://harbor.example:5000",
		CA:       "/etc/containerd/certs.d/harbor.example:5000/ca.crt",
		CAData:   "-----BEGIN CERTIFICATE-----\n",
		Mirrors: []RegistryMirror{
			{URL: "https://m1.example", CA: "/etc/containerd/certs.d/m1.example/ca.crt"},
			{URL: "http://10.0.0.5:5000", SkipVerify: true},
		},
	}
	files, err := RenderRegistryHosts(r, r.Dir(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "/etc/containerd/certs.d/harbor.example:5000/hosts.toml" || files[1].Path != r.CA || string(files[1].Data) != r.CAData {
		t.Fatalf("files %+v", files)
	}
	var h hostsFile
	if err := toml.NewDecoder(bytes.NewReader(files[0].Data)).DisallowUnknownFields().Decode(&h); err != nil {
		t.Fatalf("hosts.toml does not decode strictly: %v\n%s", err, files[0].Data)
	}
	if h.Server != r.Server || h.CA != r.CA || h.SkipVerify || len(h.Host) != 2 {
		t.Fatalf("decoded %+v", h)
	}
	m1, m2 := h.Host["https://m1.example"], h.Host["http://10.0.0.5:5000"]
	if m1.CA != r.Mirrors[0].CA || m1.SkipVerify || !slices.Equal(m1.Capabilities, []string{"pull", "resolve"}) {
		t.Errorf("m1 %+v", m1)
	}
	if m2.CA != "" || !m2.SkipVerify {
		t.Errorf("m2 %+v", m2)
	}
	// Mirrors are tried in the order given: containerd reads the host
	// tables in file order.
	if i, j := bytes.Index(files[0].Data, []byte("m1.example")), bytes.Index(files[0].Data, []byte("10.0.0.5")); i < 0 || j < i {
		t.Errorf("mirror order lost:\n%s", files[0].Data)
	}
	if _, err := RenderRegistryHosts(RegistryHosts{Registry: "https://x"}, "/x"); err == nil {
		t.Error("a registry name with a scheme rendered")
	}
}
