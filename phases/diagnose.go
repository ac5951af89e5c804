package phases

import (
	"context"
	"fmt"
	"strings"
	"time"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// diagnose adds to a failed wait the last lines of the logs of the named
// static pods and, with "kubelet", of the kubelet, read from the host. The
// cause stays in the chain.
func (d *Data) diagnose(ctx context.Context, err error, components ...string) error {
	// The wait may have used up ctx; reading logs gets its own bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var b strings.Builder
	for _, name := range components {
		var out string
		if name == "kubelet" {
			out = d.Services.Log(ctx, "kubelet", 15)
		} else {
			out = d.podLogTail(ctx, name, 15)
		}
		fmt.Fprintf(&b, "\nlast lines of %s's log:\n%s", name, indent(out))
	}
	return fmt.Errorf("%w%s", err, b.String())
}

// podLogTail returns the last n lines of the newest log of a static pod's
// container, as the kubelet keeps it under /var/log/pods.
func (d *Data) podLogTail(ctx context.Context, component string, n int) string {
	out, err := host.Probe(ctx, d.Host, "sh", "-c",
		`f=$(ls -t "$4"/kube-system_"$1"-"$2"_*/"$1"/*.log 2>/dev/null | head -n 1); `+
			`if [ -n "$f" ]; then echo "($f)"; tail -n "$3" "$f"; else echo "(no log under $4: the kubelet has not started $1)"; fi`,
		"sh", component, d.NodeName, fmt.Sprint(n), layout.PodLogsDir)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	return out
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
