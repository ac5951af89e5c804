package cluster

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"kforge.dev/kforge/explain"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/messages"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

// ExplainOptions are the inputs of `kforge explain [KIND NAME]`.
type ExplainOptions struct {
	Connect ConnectOptions
	// ConfigFile asks the cluster file's control plane, over SSH.
	ConfigFile string
	// Kind and Name pick an object to trace; empty explains the cluster.
	Kind, Name, Namespace string
	JSON                  bool
	Printer               *messages.Printer
	Out                   io.Writer
}

// Explain reads the cluster through its control plane's admin kubeconfig
// and writes its architecture, or the path of one object to running
// containers.
func Explain(ctx context.Context, o ExplainOptions) error {
	h, d, closeAll, err := controlPlaneData(ctx, "explain", o.ConfigFile, &o.Connect)
	if err != nil {
		return err
	}
	defer closeAll()
	client, err := kube.FromHost(ctx, h, layout.AdminConf, d.LocalAPIServer())
	if err != nil {
		return fmt.Errorf("%s on %s: %w (is this a kforge control plane?)", layout.AdminConf, h.Name(), err)
	}
	if o.Kind != "" {
		t, err := explain.Object(ctx, client.Kube, o.Kind, o.Namespace, o.Name, o.Printer)
		if err != nil {
			return err
		}
		if o.JSON {
			return writeJSON(o.Out, t)
		}
		explain.PrintTrace(o.Out, t, o.Printer)
		return nil
	}
	m, err := explain.Architecture(ctx, client.Kube, hostFacts(ctx, h, d), o.Printer)
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.Out, m)
	}
	explain.PrintMap(o.Out, m, o.Printer)
	return nil
}

// hostFacts reads what only the control-plane host knows: etcd's data
// directory size and which pod network config is there.
func hostFacts(ctx context.Context, h host.Host, d *phases.Data) explain.HostFacts {
	hf := explain.HostFacts{
		ControlPlane: h.Name(), Endpoint: "https://" + d.Endpoint,
		EtcdDataDir: layout.EtcdDataDir, CRISocket: layout.ContainerRuntimeEndpoint,
	}
	// etcd's own answer for the database, du for the directory (the
	// write-ahead log's preallocated files included).
	if id, err := runningContainer(ctx, h, "etcd"); err == nil {
		if e, err := readEtcdPod(ctx, h); err == nil {
			if members, err := etcdMembers(ctx, h, id, e.clientURL); err == nil {
				for _, m := range members {
					if m.DBSize > 0 && (hf.EtcdSize == "" || m.Leader) {
						hf.EtcdSize = reporter.MiB(m.DBSize)
					}
				}
			}
		}
	}
	if out, err := host.Output(ctx, h, "du", "-sb", layout.EtcdDataDir); err == nil {
		if f := strings.Fields(out); len(f) > 0 {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				hf.EtcdDiskUsage = reporter.MiB(n)
			}
		}
	}
	for _, f := range []string{layout.KubeRouterConflist, layout.BridgeConflist} {
		if ok, err := host.Exists(ctx, h, f); err == nil && ok {
			hf.CNIConfig = f
			break
		}
	}
	return hf
}
