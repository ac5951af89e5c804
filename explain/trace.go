package explain

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Step is one step from an object to running containers, with when it
// happened and the records that show it.
type Step struct {
	N     int       `json:"n"`
	Title string    `json:"title"`
	Time  time.Time `json:"time,omitzero"`
	// Evidence are the records: events, owner references, conditions.
	Evidence []string `json:"evidence"`
	// Done is false when the cluster has no record that the step happened.
	Done bool `json:"done"`
}

// Trace is how one Deployment or Pod became running containers.
type Trace struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Steps     []Step `json:"steps"`
}

// Object traces a Deployment ("deployment", "deploy") or a Pod ("pod",
// "po") in namespace.
func Object(ctx context.Context, c kubernetes.Interface, kind, namespace, name string, p Printer) (*Trace, error) {
	switch strings.ToLower(kind) {
	case "deployment", "deployments", "deploy":
		d, err := c.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return deployment(ctx, c, d, p)
	case "pod", "pods", "po":
		pod, err := c.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		t := &Trace{Kind: "Pod", Namespace: namespace, Name: name}
		t.add(p, "stored", pod.CreationTimestamp.Time, stored(p, "Pod", &pod.ObjectMeta)...)
		if rs := owner(pod.OwnerReferences, "ReplicaSet"); rs != "" {
			if r, err := c.AppsV1().ReplicaSets(namespace).Get(ctx, rs, metav1.GetOptions{}); err == nil {
				if d := owner(r.OwnerReferences, "Deployment"); d != "" {
					t.add(p, "replicaset", r.CreationTimestamp.Time, p.T("explain.ev.owner", map[string]string{"Child": "ReplicaSet " + r.Name, "Parent": "Deployment " + d}))
				}
				ev := events(ctx, c, namespace, "ReplicaSet", r.Name, "SuccessfulCreate", pod.Name)
				t.add(p, "pods", first(ev, pod.CreationTimestamp.Time), append([]string{p.T("explain.ev.owner", map[string]string{"Child": "Pod " + pod.Name, "Parent": "ReplicaSet " + r.Name})}, ev.lines()...)...)
			}
		}
		podSteps(ctx, c, t, pod, p)
		return t, nil
	}
	return nil, fmt.Errorf("kforge explain %s: explain a deployment or a pod (kforge explain deployment NAME, kforge explain pod NAME)", kind)
}

func deployment(ctx context.Context, c kubernetes.Interface, d *appsv1.Deployment, p Printer) (*Trace, error) {
	t := &Trace{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name}
	t.add(p, "stored", d.CreationTimestamp.Time, stored(p, "Deployment", &d.ObjectMeta)...)
	rss, err := c.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var mine []appsv1.ReplicaSet
	for _, r := range rss.Items {
		if ownedBy(r.OwnerReferences, d.UID) {
			mine = append(mine, r)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].CreationTimestamp.Before(&mine[j].CreationTimestamp) })
	scaled := events(ctx, c, d.Namespace, "Deployment", d.Name, "ScalingReplicaSet", "")
	var ev []string
	var when time.Time
	for _, r := range mine {
		ev = append(ev, p.T("explain.ev.rs", map[string]any{"Name": r.Name, "Ready": r.Status.ReadyReplicas, "Want": valueOr(r.Spec.Replicas, 1), "Hash": r.Labels["pod-template-hash"], "Parent": d.Name}))
		when = r.CreationTimestamp.Time
	}
	t.add(p, "replicaset", first(scaled, when), append(ev, scaled.lines()...)...)
	if len(mine) == 0 {
		return t, nil
	}
	current := mine[len(mine)-1]
	sel, err := metav1.LabelSelectorAsSelector(current.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods, err := c.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	created := events(ctx, c, d.Namespace, "ReplicaSet", current.Name, "SuccessfulCreate", "")
	var owned []corev1.Pod
	ev = nil
	for _, pod := range pods.Items {
		if ownedBy(pod.OwnerReferences, current.UID) {
			owned = append(owned, pod)
			ev = append(ev, p.T("explain.ev.owner", map[string]string{"Child": "Pod " + pod.Name, "Parent": "ReplicaSet " + current.Name}))
		}
	}
	sort.Slice(owned, func(i, j int) bool { return owned[i].Name < owned[j].Name })
	t.add(p, "pods", first(created, current.CreationTimestamp.Time), append(ev, created.lines()...)...)
	if len(owned) == 0 {
		return t, nil
	}
	// One pod's path is every pod's: follow the first, name the rest.
	pod := owned[0]
	podSteps(ctx, c, t, &pod, p)
	if len(owned) > 1 {
		var others []string
		for _, o := range owned[1:] {
			others = append(others, o.Name)
		}
		last := &t.Steps[len(t.Steps)-1]
		last.Evidence = append(last.Evidence, p.T("explain.ev.others", map[string]string{"Pod": pod.Name, "Others": strings.Join(others, ", ")}))
	}
	return t, nil
}

// podSteps are the steps every pod takes: scheduled, containers started
// by the kubelet through the runtime, an address from CNI, and endpoints
// that route Services to it.
func podSteps(ctx context.Context, c kubernetes.Interface, t *Trace, pod *corev1.Pod, p Printer) {
	sched := events(ctx, c, pod.Namespace, "Pod", pod.Name, "Scheduled", "")
	ev := append([]string{}, sched.lines()...)
	when := condTime(pod, corev1.PodScheduled)
	if pod.Spec.NodeName != "" {
		ev = append([]string{p.T("explain.ev.bound", map[string]string{"Pod": pod.Name, "Node": pod.Spec.NodeName, "Scheduler": schedulerName(pod)})}, ev...)
	}
	ev = append(ev, condLine(p, pod, corev1.PodScheduled))
	t.addIf(p, "scheduled", pod.Spec.NodeName != "", first(sched, when), ev...)

	kubelet := events(ctx, c, pod.Namespace, "Pod", pod.Name, "", "")
	ev = []string{condLine(p, pod, corev1.PodReadyToStartContainers)}
	for _, e := range kubelet {
		if e.source == "kubelet" {
			ev = append(ev, e.line())
		}
	}
	started := time.Time{}
	for _, cs := range pod.Status.ContainerStatuses {
		line := p.T("explain.ev.container", map[string]string{"Name": cs.Name, "Image": cs.Image, "ID": cs.ContainerID})
		if cs.State.Running != nil {
			line += p.T("explain.ev.running", map[string]string{"Since": stamp(cs.State.Running.StartedAt.Time)})
			if started.IsZero() || cs.State.Running.StartedAt.Time.After(started) {
				started = cs.State.Running.StartedAt.Time
			}
		}
		ev = append(ev, line)
	}
	ev = append(ev, condLine(p, pod, corev1.ContainersReady))
	t.addIf(p, "containers", !started.IsZero(), orTime(condTime(pod, corev1.PodReadyToStartContainers), started), ev...)

	ev = nil
	if pod.Status.PodIP != "" {
		var ips []string
		for _, ip := range pod.Status.PodIPs {
			ips = append(ips, ip.IP)
		}
		ev = append(ev, p.T("explain.ev.ip", map[string]string{"Pod": pod.Name, "IPs": strings.Join(ips, ", ")}))
		if n, err := c.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{}); err == nil {
			for _, cidr := range n.Spec.PodCIDRs {
				if pfx, err := netip.ParsePrefix(cidr); err == nil {
					if ip, err := netip.ParseAddr(pod.Status.PodIP); err == nil && pfx.Contains(ip) {
						ev = append(ev, p.T("explain.ev.cidr", map[string]string{"IP": pod.Status.PodIP, "CIDR": cidr, "Node": n.Name}))
					}
				}
			}
		}
	}
	t.addIf(p, "network", pod.Status.PodIP != "", condTime(pod, corev1.PodReadyToStartContainers), ev...)

	ev, routed, when := routes(ctx, c, pod, p)
	ev = append([]string{condLine(p, pod, corev1.PodReady)}, ev...)
	// Routed once both are true: the pod is Ready and a slice lists it.
	if ready := condTime(pod, corev1.PodReady); ready.After(when) {
		when = ready
	}
	t.addIf(p, "routed", routed, when, ev...)
}

// routes finds the Services whose selector takes the pod and the endpoint
// slices that list it.
func routes(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod, p Printer) (ev []string, routed bool, when time.Time) {
	svcs, err := c.CoreV1().Services(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{err.Error()}, false, when
	}
	for _, s := range svcs.Items {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			continue
		}
		slices, err := c.DiscoveryV1().EndpointSlices(pod.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + s.Name})
		if err != nil {
			continue
		}
		for _, sl := range slices.Items {
			for _, e := range sl.Endpoints {
				if e.TargetRef == nil || e.TargetRef.Kind != "Pod" || e.TargetRef.Name != pod.Name {
					continue
				}
				ready := e.Conditions.Ready != nil && *e.Conditions.Ready
				routed = routed || ready
				ev = append(ev, p.T("explain.ev.slice", map[string]any{
					"Service": s.Name, "ClusterIP": s.Spec.ClusterIP, "Ports": ports(s), "Slice": sl.Name,
					"Addresses": strings.Join(e.Addresses, ","), "Ready": ready,
				}))
				if t := sl.CreationTimestamp.Time; when.IsZero() || t.After(when) {
					when = t
				}
			}
		}
	}
	if len(ev) == 0 {
		ev = append(ev, p.T("explain.ev.noservice", map[string]string{"Pod": pod.Name}))
	}
	return ev, routed, when
}

func ports(s corev1.Service) string {
	var out []string
	for _, p := range s.Spec.Ports {
		out = append(out, fmt.Sprintf("%d/%s→%s", p.Port, p.Protocol, p.TargetPort.String()))
	}
	return strings.Join(out, ",")
}

func (t *Trace) add(p Printer, key string, when time.Time, evidence ...string) {
	t.addIf(p, key, true, when, evidence...)
}

func (t *Trace) addIf(p Printer, key string, done bool, when time.Time, evidence ...string) {
	var ev []string
	for _, e := range evidence {
		if e != "" {
			ev = append(ev, e)
		}
	}
	if !done {
		ev = append(ev, p.T("explain.ev.notyet", nil))
	}
	t.Steps = append(t.Steps, Step{N: stepNumber[key], Title: p.T("explain.step."+key, nil), Time: when, Evidence: ev, Done: done})
}

// stepNumber is each step's place in the path every Deployment takes.
var stepNumber = map[string]int{"stored": 1, "replicaset": 2, "pods": 3, "scheduled": 4, "containers": 5, "network": 6, "routed": 7}

func stored(p Printer, kind string, m *metav1.ObjectMeta) []string {
	ev := []string{p.T("explain.ev.stored", map[string]string{"Kind": kind, "Name": m.Namespace + "/" + m.Name, "UID": string(m.UID), "RV": m.ResourceVersion})}
	for _, f := range m.ManagedFields {
		if f.Operation == metav1.ManagedFieldsOperationApply || f.Operation == metav1.ManagedFieldsOperationUpdate {
			if f.Subresource == "" {
				ev = append(ev, p.T("explain.ev.manager", map[string]string{"Manager": f.Manager, "Operation": string(f.Operation), "Time": stampPtr(f.Time)}))
				break
			}
		}
	}
	return ev
}

func owner(refs []metav1.OwnerReference, kind string) string {
	for _, r := range refs {
		if r.Kind == kind && r.Controller != nil && *r.Controller {
			return r.Name
		}
	}
	return ""
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

type event struct {
	at      time.Time
	reason  string
	source  string
	message string
}

func (e event) line() string {
	return fmt.Sprintf("%s %s (%s): %s", stamp(e.at), e.reason, e.source, e.message)
}

type eventList []event

func (l eventList) lines() []string {
	var out []string
	for _, e := range l {
		out = append(out, e.line())
	}
	return out
}

// events are the object's events, oldest first, with reason (any when
// empty) and a message that contains mentions (any when empty).
func events(ctx context.Context, c kubernetes.Interface, ns, kind, name, reason, mentions string) eventList {
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}
	list, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return nil
	}
	var out eventList
	for _, e := range list.Items {
		if e.InvolvedObject.Kind != kind || e.InvolvedObject.Name != name {
			continue // a fake client ignores field selectors
		}
		if (reason != "" && e.Reason != reason) || (mentions != "" && !strings.Contains(e.Message, mentions)) {
			continue
		}
		at := e.EventTime.Time
		if at.IsZero() {
			at = e.FirstTimestamp.Time
		}
		if at.IsZero() {
			at = e.CreationTimestamp.Time
		}
		src := e.Source.Component
		if src == "" {
			src = e.ReportingController
		}
		out = append(out, event{at: at, reason: e.Reason, source: src, message: e.Message})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

func first(l eventList, fallback time.Time) time.Time {
	if len(l) > 0 && !l[0].at.IsZero() {
		return l[0].at
	}
	return fallback
}

func condTime(pod *corev1.Pod, t corev1.PodConditionType) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

func condLine(p Printer, pod *corev1.Pod, t corev1.PodConditionType) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			reason := ""
			if c.Reason != "" {
				reason = " (" + c.Reason + ")"
			}
			return p.T("explain.ev.condition", map[string]string{"Type": string(c.Type), "Status": string(c.Status), "Since": stamp(c.LastTransitionTime.Time), "Reason": reason})
		}
	}
	return ""
}

func schedulerName(pod *corev1.Pod) string {
	if pod.Spec.SchedulerName != "" {
		return pod.Spec.SchedulerName
	}
	return corev1.DefaultSchedulerName
}

func orTime(a, b time.Time) time.Time {
	if !a.IsZero() {
		return a
	}
	return b
}

func valueOr(p *int32, d int32) int32 {
	if p == nil {
		return d
	}
	return *p
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func stampPtr(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(t.Time)
}
