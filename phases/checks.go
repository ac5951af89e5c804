// What init's and join's preflight phases share: problems that
// --ignore-preflight-errors may turn into warnings, and one read-only probe
// of the host's ports, disk and leftovers.
package phases

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/supervisor"
)

// problem is one failed preflight check: its name (for
// --ignore-preflight-errors), what is wrong and what to do.
type problem struct{ name, msg string }

// preflightResult turns problems into an error, leaving out (as warnings)
// those named in --ignore-preflight-errors, with what the run record says.
func (d *Data) preflightResult(st preflightState, problems []problem) error {
	problems = append(problems, st.problems...)
	var errs []string
	for _, p := range problems {
		if slices.Contains(d.IgnorePreflight, "all") || slices.ContainsFunc(d.IgnorePreflight, func(s string) bool { return strings.EqualFold(s, p.name) }) {
			d.Out.Infof("  ! [ignored %s] %s", p.name, p.msg)
			continue
		}
		errs = append(errs, fmt.Sprintf("[%s] %s", p.name, p.msg))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s\nTo go on anyway, pass --ignore-preflight-errors=NAME,... (or all)", strings.Join(errs, "\n"))
	}
	return nil
}

func (d *Data) preflightProbe(ctx context.Context) (preflightState, error) {
	// kforge's own kubelet service (either kind), then what another
	// tool's cluster leaves.
	out, err := host.Probe(ctx, d.Host, "sh", "-c", preflightScript, "sh",
		supervisor.ServiceFile(layout.SupervisorDir, "kubelet"), layout.KubeletUnitDropIn,
		layout.ManifestsDir+"/kube-apiserver.yaml", layout.KubeletConf, layout.EtcdDataDir+"/member")
	if err != nil {
		return preflightState{}, err
	}
	st := preflightState{diskFreeMB: -1}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "listen":
			for _, hex := range strings.Fields(v) {
				if p, err := strconv.ParseInt(hex, 16, 32); err == nil {
					st.listening = append(st.listening, int(p))
				}
			}
		case "diskfree":
			if n, err := strconv.Atoi(v); err == nil {
				st.diskFreeMB = n
			}
		case "ours":
			st.ours = v == "yes"
		case "leftover":
			st.foreign = v
		}
	}
	if st.record, err = d.readRunRecord(ctx); err != nil {
		return st, err
	}
	if ours, p := d.ownRun(st.record); ours {
		// A run of this cluster began here and may have been killed
		// before it installed a service: what it left is its own.
		st.ours = true
	} else if p != nil {
		st.problems = append(st.problems, *p)
	}
	if st.ours {
		st.foreign = ""
	}
	return st, nil
}

const preflightScript = `
echo "listen=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" {split($2, a, ":"); print a[2]}' | sort -u | tr '\n' ' ')"
echo "diskfree=$(df -Pk /var/lib 2>/dev/null | awk 'NR==2 {print int($4/1024)}')"
ours=
[ -e "$1" ] || [ -e "$2" ] && ours=yes
echo "ours=$ours"
shift 2
for f in "$@"; do
  [ -e "$f" ] && echo "leftover=$f" && break
done
true`

// preflightState is what preflight reads from the host in one probe.
type preflightState struct {
	listening  []int
	diskFreeMB int
	// ours: kforge's own services are installed (a re-run).
	ours bool
	// foreign names a leftover of a cluster kforge did not build.
	foreign string
	// record is the host's run record, if any.
	record *runRecord
	// problems are what the run record says is wrong.
	problems []problem
}
