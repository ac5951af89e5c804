package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

// ResetOptions are the inputs of `kforge reset`.
type ResetOptions struct {
	Connect ConnectOptions
	// Force skips the confirmation question.
	Force bool
	// In answers the confirmation question.
	In io.Reader
	// Kubeconfig is the user's kubeconfig the kforge context is removed
	// from; "" means $KUBECONFIG's first file or ~/.kube/config.
	Kubeconfig string
	Phase      string
	SkipPhases []string
	Out        *reporter.Reporter
}

// Reset undoes kforge init, join or up on this machine.
func Reset(ctx context.Context, o ResetOptions) error {
	list := phases.Reset()
	if err := phases.Check(list, "--skip-phases", o.SkipPhases...); err != nil {
		return err
	}
	if !o.Force && !confirm(o.In, o.Out.Writer(), "kforge reset removes this machine's Kubernetes node: its pods, /etc/kubernetes, /var/lib/kubelet, /var/lib/etcd and the CNI state. Continue? [y/N] ") {
		return fmt.Errorf("reset aborted; pass --force to reset without asking")
	}
	c := config.Default()
	node, _ := c.ControlPlane()
	h, err := Connect(ctx, node, o.Connect)
	if err != nil {
		return err
	}
	defer h.Close()
	d := &phases.Data{Cluster: c, Node: node, Host: h, Out: o.Out}
	if err := d.Prepare(ctx); err != nil {
		return err
	}
	if err := phases.Execute(ctx, list, d, phases.Options{Only: o.Phase, Skip: o.SkipPhases}); err != nil {
		return fmt.Errorf("%w\nFix the cause and run kforge reset again", err)
	}
	path := UserKubeconfig(o.Kubeconfig)
	if removed, err := RemoveContext(path, ContextName); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	} else if removed {
		o.Out.Infof("  removed the %q context from %s", ContextName, path)
	}
	o.Out.Total("kforge reset finished")
	return nil
}

func confirm(in io.Reader, out io.Writer, question string) bool {
	if in == nil {
		return false
	}
	fmt.Fprint(out, question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
