package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// preflight checks that the host can run a control plane before anything
// is changed. It changes nothing.
func preflight(ctx context.Context, d *Data) error {
	var problems []string
	f := d.Facts
	if f.UID != 0 {
		problems = append(problems, fmt.Sprintf("kforge runs as uid %d; run it as root (sudo kforge ...)", f.UID))
	}
	if !f.CgroupV2 {
		d.Out.Infof("  ! %s uses cgroup v1: kubelet runs with failCgroupV1: false (upstream deprecates cgroup v1; move to cgroup v2 when you can)", d.Host.Name())
	}
	if !f.CapSysResource {
		d.Out.Infof("  ! %s: root lacks CAP_SYS_RESOURCE: containerd is configured with restrict_oom_score_adj", d.Host.Name())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}
