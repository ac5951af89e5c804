package templates

import (
	"fmt"
	"slices"
	"sort"
)

// Components whose flags the cluster file's extraArgs extend, named as the
// cluster file names them.
const (
	ComponentAPIServer         = "apiServer"
	ComponentControllerManager = "controllerManager"
	ComponentScheduler         = "scheduler"
	ComponentEtcd              = "etcd"
	ComponentKubelet           = "kubelet"
)

var componentTemplates = map[string]string{
	ComponentAPIServer:         "controlplane/kube-apiserver.yaml",
	ComponentControllerManager: "controlplane/kube-controller-manager.yaml",
	ComponentScheduler:         "controlplane/kube-scheduler.yaml",
	ComponentEtcd:              "controlplane/etcd.yaml",
}

// overridable are the flags kforge sets that extraArgs may change: tunings
// and hardening defaults a site may have its own policy for. Every other
// flag kforge sets (addresses, certificates, paths, what the cluster needs
// to work) cannot be overridden.
var overridable = map[string][]string{
	ComponentAPIServer: {"audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize", "enable-admission-plugins",
		"profiling", "service-account-extend-token-expiration", "tls-cipher-suites", "tls-min-version"},
	ComponentControllerManager: {"bind-address", "kube-api-burst", "kube-api-qps", "profiling", "tls-cipher-suites", "tls-min-version"},
	ComponentScheduler:         {"bind-address", "profiling", "tls-cipher-suites", "tls-min-version"},
	ComponentEtcd:              {"cipher-suites", "election-timeout", "heartbeat-interval", "snapshot-count", "tls-min-version"},
}

// Components lists the components extraArgs may name, in the cluster
// file's order.
func Components() []string {
	return []string{ComponentAPIServer, ComponentControllerManager, ComponentScheduler, ComponentEtcd, ComponentKubelet}
}

// Overridable lists the flags kforge sets that extraArgs of component may
// change.
func Overridable(component string) []string { return slices.Clone(overridable[component]) }

// ManagedFlags lists, sorted, the flags kforge itself sets for component:
// the defaults its template passes to flags, read by rendering the
// template with a sample node (with a pod subnet, so that conditional
// flags count too).
func ManagedFlags(component string) ([]string, error) {
	if component == ComponentKubelet {
		k := Kubelet{NodeName: "node", NodeIP: "192.0.2.1"}.withDefaults()
		return sortedKeys(k.defaultArgs()), nil
	}
	name, ok := componentTemplates[component]
	if !ok {
		return nil, fmt.Errorf("no component %q: use one of %v", component, Components())
	}
	sample := ControlPlane{
		Images:           ControlPlaneImages{Etcd: "etcd", APIServer: "a", ControllerManager: "c", Scheduler: "s"},
		EtcdVersion:      "3.6.0",
		NodeName:         "node",
		AdvertiseAddress: "192.0.2.1",
		ServiceSubnet:    "10.96.0.0/12",
		PodSubnet:        "10.244.0.0/16",
	}.withDefaults()
	var got []string
	fm := funcs()
	fm["flags"] = func(defaults, extra map[string]string) []string {
		got = append(got, sortedKeys(defaults)...)
		return nil
	}
	if _, err := render(name, sample, fm); err != nil {
		return nil, err
	}
	sort.Strings(got)
	return slices.Compact(got), nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
