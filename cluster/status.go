package cluster

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"kforge.dev/kforge/expiration"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/messages"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

// StatusOptions are the inputs of `kforge status`.
type StatusOptions struct {
	Connect ConnectOptions
	// ConfigFile asks the cluster file's control plane, over SSH.
	ConfigFile string
	JSON       bool
	Printer    *messages.Printer
	Out        io.Writer
}

// Status is the cluster at a glance, as `kforge status` shows it.
type Status struct {
	Cluster  string `json:"cluster"`
	Endpoint string `json:"endpoint"`
	Version  string `json:"version"`
	// ControlPlane is the host the rest was read from.
	ControlPlane string            `json:"controlPlane"`
	Nodes        []NodeStatus      `json:"nodes"`
	Components   []ComponentStatus `json:"components"`
	Etcd         []EtcdMember      `json:"etcd"`
	Certificates CertsSummary      `json:"certificates"`
	// JoinCommand says how to print a join command with a fresh token.
	JoinCommand string `json:"joinCommand"`
	// Problems are what is not healthy; status fails when there are any.
	Problems []string `json:"problems,omitempty"`
	// problems are the same as message ids and their data, for --lang.
	problems []problem
}

// problem is a message id of the catalogues and its data.
type problem struct {
	id   string
	data map[string]any
}

// NodeStatus is one node: its role, version, Ready condition and the
// kubelet's /healthz, asked through the API server.
type NodeStatus struct {
	Name    string `json:"name"`
	Roles   string `json:"roles"`
	Address string `json:"address"`
	Version string `json:"version"`
	Ready   bool   `json:"ready"`
	Kubelet string `json:"kubelet"`
}

// ComponentStatus is one part of the control plane on the control-plane
// host: how it runs, its health, and where its configuration and log are.
type ComponentStatus struct {
	Name   string `json:"name"`
	RunsAs string `json:"runsAs"`
	Health string `json:"health"`
	// Healthy is Health's verdict.
	Healthy bool   `json:"healthy"`
	Config  string `json:"config"`
	Log     string `json:"log"`
}

// CertsSummary is certificate expiry at a glance.
type CertsSummary struct {
	Count int `json:"count"`
	// Soonest is the certificate kforge renews that expires first.
	Soonest       string    `json:"soonest"`
	SoonestExpiry time.Time `json:"soonestExpiry"`
	// CAExpiry is when the first CA expires.
	CAExpiry time.Time `json:"caExpiry"`
}

// staticPods are the control plane's static pods, in start order.
var staticPods = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// ClusterStatus reads the cluster's state from its control plane: nodes
// (with each kubelet's /healthz through the API server), the control-plane
// components and the node services with their configuration and logs, etcd's
// members, and certificate expiry. It prints it all and fails, naming them,
// when something is not healthy.
func ClusterStatus(ctx context.Context, o StatusOptions) error {
	h, d, closeAll, err := controlPlaneData(ctx, "status", o.ConfigFile, &o.Connect)
	if err != nil {
		return err
	}
	defer closeAll()
	st, err := readStatus(ctx, h, d)
	if err != nil {
		return err
	}
	if o.JSON {
		if err := writeJSON(o.Out, st); err != nil {
			return err
		}
	} else {
		printStatus(o.Out, st, o.Printer)
	}
	if len(st.Problems) > 0 {
		if o.JSON || o.Printer == nil {
			return fmt.Errorf("not healthy:\n  %s", strings.Join(st.Problems, "\n  "))
		}
		return fmt.Errorf("%s\n  %s", o.Printer.T("status.unhealthy", nil), strings.Join(localized(st.problems, o.Printer), "\n  "))
	}
	return nil
}

// controlPlaneData connects to the control plane (this machine, or the
// cluster file's over SSH) and returns its Host and a run's Data for
// command, which reads, never writes.
func controlPlaneData(ctx context.Context, command, file string, o *ConnectOptions) (host.Host, *phases.Data, func(), error) {
	c, err := LoadConfigOrDefault(file)
	if err != nil {
		return nil, nil, nil, err
	}
	h, closeAll, err := controlPlaneHost(ctx, file, o)
	if err != nil {
		return nil, nil, nil, err
	}
	node, _ := c.ControlPlane()
	d, err := phases.New(ctx, phases.Config{Command: command, Cluster: c, Node: node, Host: h, Out: reporter.Discard()})
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return h, d, closeAll, nil
}

func readStatus(ctx context.Context, h host.Host, d *phases.Data) (*Status, error) {
	client, err := kube.FromHost(ctx, h, layout.AdminConf, d.LocalAPIServer())
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w (is this a kforge control plane?)", layout.AdminConf, h.Name(), err)
	}
	st := &Status{
		Cluster: d.Cluster.Name, Endpoint: "https://" + d.Endpoint, ControlPlane: h.Name(),
		JoinCommand: "kforge token create --print-join-command",
	}
	en := messages.English()
	problem := func(id string, kv ...any) {
		data := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			data[kv[i].(string)] = kv[i+1]
		}
		st.problems = append(st.problems, problem{id, data})
		st.Problems = append(st.Problems, en.T("status.problem."+id, data))
	}
	if v, err := client.Kube.Discovery().ServerVersion(); err == nil {
		st.Version = v.GitVersion
	} else {
		problem("apiserver", "Server", client.Server(), "Err", err)
		return st, nil
	}

	nodes, err := client.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	sort.Slice(nodes.Items, func(i, j int) bool { return nodes.Items[i].Name < nodes.Items[j].Name })
	for _, n := range nodes.Items {
		ready, _ := kube.NodeReady(&n)
		ns := NodeStatus{Name: n.Name, Roles: roles(n), Version: n.Status.NodeInfo.KubeletVersion, Ready: ready}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ns.Address = a.Address
			}
		}
		body, err := client.Kube.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", n.Name, "proxy", "healthz").Do(ctx).Raw()
		ns.Kubelet = strings.TrimSpace(string(body))
		if err != nil {
			ns.Kubelet = "no answer: " + err.Error()
		}
		if !ns.Ready {
			problem("node", "Node", n.Name)
		}
		if ns.Kubelet != "ok" {
			problem("kubelet", "Node", n.Name, "Health", ns.Kubelet)
		}
		st.Nodes = append(st.Nodes, ns)
	}

	pods, err := client.Kube.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + d.NodeName})
	if err != nil {
		return nil, err
	}
	for _, name := range staticPods {
		cs := ComponentStatus{Name: name, Config: path.Join(layout.ManifestsDir, name+".yaml")}
		var pod *corev1.Pod
		for i := range pods.Items {
			if pods.Items[i].Labels["component"] == name {
				pod = &pods.Items[i]
			}
		}
		if pod == nil {
			cs.RunsAs, cs.Health, cs.Log = "static pod (no mirror pod in the API)", "unknown", layout.PodLogsDir
		} else {
			cs.RunsAs = "static pod kube-system/" + pod.Name
			cs.Log = path.Join(layout.PodLogsDir, fmt.Sprintf("kube-system_%s_%s", pod.Name, pod.UID), name)
			cs.Healthy = podReady(pod)
			cs.Health = "Ready, probe " + probeURL(pod)
			if !cs.Healthy {
				cs.Health = "not Ready (" + waiting(pod) + "), probe " + probeURL(pod)
			}
		}
		if name == "kube-apiserver" {
			body, err := client.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Raw()
			cs.Healthy = cs.Healthy && err == nil && strings.TrimSpace(string(body)) == "ok"
			if err != nil {
				cs.Health = "/readyz: " + err.Error()
			} else {
				cs.Health = "/readyz ok, " + cs.Health
			}
		}
		if !cs.Healthy {
			problem("component", "Component", name, "Node", d.NodeName, "Health", cs.Health)
		}
		st.Components = append(st.Components, cs)
	}
	for _, svc := range []string{"containerd", "kubelet"} {
		runsAs, log := d.Services.Where(svc)
		cs := ComponentStatus{Name: svc, RunsAs: runsAs, Config: layout.KubeletConfig, Log: log}
		if svc == "containerd" {
			cs.Config = layout.ContainerdConfig
			out, err := host.Output(ctx, h, "crictl", "version")
			cs.Healthy, cs.Health = err == nil, "CRI at "+layout.ContainerdSocket+" answers: "+runtimeVersion(out)
			if err != nil {
				cs.Health = "crictl version: " + err.Error()
			}
		} else {
			for _, n := range st.Nodes {
				if n.Name == d.NodeName {
					cs.Healthy, cs.Health = n.Kubelet == "ok", "/healthz (through the API server): "+n.Kubelet
				}
			}
		}
		if !cs.Healthy {
			problem("component", "Component", svc, "Node", d.NodeName, "Health", cs.Health)
		}
		st.Components = append(st.Components, cs)
	}

	if id, err := runningContainer(ctx, h, "etcd"); err == nil {
		if e, err := readEtcdPod(ctx, h); err == nil {
			st.Etcd, err = etcdMembers(ctx, h, id, e.clientURL)
			if err != nil {
				problem("etcd", "Err", err)
			}
		}
	}
	for _, m := range st.Etcd {
		if !m.Healthy {
			problem("member", "Member", m.Name, "Err", m.Error)
		}
	}

	certs, err := expiration.Check(ctx, h, time.Now())
	if err != nil {
		problem("certs", "Err", err)
	}
	st.Certificates.Count = len(certs)
	for _, c := range certs {
		switch {
		case c.CA && (st.Certificates.CAExpiry.IsZero() || c.NotAfter.Before(st.Certificates.CAExpiry)):
			st.Certificates.CAExpiry = c.NotAfter
		case !c.CA && c.RenewedBy == expiration.ByKforge && (st.Certificates.Soonest == "" || c.NotAfter.Before(st.Certificates.SoonestExpiry)):
			st.Certificates.Soonest, st.Certificates.SoonestExpiry = c.Name, c.NotAfter
		}
	}
	if left := time.Until(st.Certificates.SoonestExpiry); st.Certificates.Soonest != "" && left < DefaultWarnWithin {
		problem("expiring", "Name", st.Certificates.Soonest, "Left", expiration.HumanDuration(left))
	}
	return st, nil
}

func roles(n corev1.Node) string {
	var r []string
	for k := range n.Labels {
		if role, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && role != "" {
			r = append(r, role)
		}
	}
	sort.Strings(r)
	if len(r) == 0 {
		return "worker"
	}
	return strings.Join(r, ",")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waiting(p *corev1.Pod) string {
	for _, s := range p.Status.ContainerStatuses {
		if w := s.State.Waiting; w != nil {
			return w.Reason
		}
		if s.State.Running != nil {
			return fmt.Sprintf("running, %d restarts", s.RestartCount)
		}
	}
	return string(p.Status.Phase)
}

// probeURL is the health endpoint a static pod's probe asks.
func probeURL(p *corev1.Pod) string {
	for _, c := range p.Spec.Containers {
		for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.StartupProbe, c.LivenessProbe} {
			if pr == nil || pr.HTTPGet == nil {
				continue
			}
			g := pr.HTTPGet
			hostName := g.Host
			if hostName == "" {
				hostName = p.Status.PodIP
			}
			port := g.Port.String()
			if g.Port.Type == intstr.String {
				port = g.Port.StrVal
			}
			return fmt.Sprintf("%s://%s:%s%s", strings.ToLower(string(g.Scheme)), hostName, port, g.Path)
		}
	}
	return "none"
}

func printStatus(w io.Writer, st *Status, p *messages.Printer) {
	if p == nil {
		p = messages.English()
	}
	fmt.Fprintln(w, p.T("status.heading", map[string]string{"Cluster": st.Cluster, "Version": st.Version, "Endpoint": st.Endpoint, "Host": st.ControlPlane}))
	fmt.Fprintln(w)
	rows := [][]string{strings.Split(p.T("status.nodes", nil), "\t")}
	for _, n := range st.Nodes {
		rows = append(rows, []string{n.Name, n.Roles, n.Address, n.Version, fmt.Sprint(n.Ready), n.Kubelet})
	}
	messages.Table(w, "", 2, rows)
	fmt.Fprintf(w, "\n%s\n", p.T("status.controlplane", map[string]string{"Host": st.ControlPlane}))
	for _, c := range st.Components {
		fmt.Fprintf(w, "  %s: %s\n", c.Name, c.RunsAs)
		var facts [][]string
		for _, f := range [][2]string{{"status.health", c.Health}, {"status.config", c.Config}, {"status.log", c.Log}} {
			facts = append(facts, []string{p.T(f[0], nil) + ":", f[1]})
		}
		messages.Table(w, "    ", 1, facts)
	}
	fmt.Fprintf(w, "\n%s\n", p.T("status.etcd", nil))
	printMembers(w, st.Etcd)
	fmt.Fprintf(w, "\n%s\n", p.T("status.certs", map[string]any{
		"Count": st.Certificates.Count, "Name": st.Certificates.Soonest, "Expiry": st.Certificates.SoonestExpiry.Format(time.RFC3339),
		"Left": expiration.HumanDuration(time.Until(st.Certificates.SoonestExpiry)), "CA": st.Certificates.CAExpiry.Format("2006-01-02"),
	}))
	fmt.Fprintf(w, "\n%s\n", p.T("status.join", map[string]string{"Command": st.JoinCommand}))
	if len(st.problems) > 0 {
		fmt.Fprintf(w, "\n%s\n", p.T("status.problems", nil))
		for _, l := range localized(st.problems, p) {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

func localized(problems []problem, p *messages.Printer) []string {
	out := make([]string, len(problems))
	for i, pr := range problems {
		out[i] = p.T("status.problem."+pr.id, pr.data)
	}
	return out
}

// runtimeVersion is "containerd v2.4.2" from crictl version's output.
func runtimeVersion(out string) string {
	var name, version string
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch strings.TrimSpace(k) {
		case "RuntimeName":
			name = strings.TrimSpace(v)
		case "RuntimeVersion":
			version = strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(name + " " + version)
}
