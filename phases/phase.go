// Package phases holds the steps kforge runs on hosts and the runner that
// executes them. A command (init, join, reset, up) is a plain list of
// phases read top to bottom; `kforge init phase NAME`, `--skip-phases` and
// the phase tree in `--help` all come from that list.
package phases

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Phase is one step of a command. A phase has either a Run function or
// children, which run in order.
type Phase struct {
	Name     string
	Short    string
	Run      func(ctx context.Context, d *Data) error
	Children []Phase
	// API marks a phase that talks to the Kubernetes API rather than to
	// the host; a dry run, which has no cluster, leaves it out.
	API bool
}

// Options select which phases Execute runs.
type Options struct {
	// Only runs the named phase (and its children) and nothing else.
	Only string
	// Skip leaves out the named phases; a parent's name skips its children.
	Skip []string
	// NoAPI leaves out the phases that talk to the Kubernetes API (a dry
	// run).
	NoAPI bool
}

// Error is a failed phase. Its message names the phase and the host.
type Error struct {
	Phase string
	Host  string
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("phase %s on %s: %v", e.Phase, e.Host, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Names lists every phase as a path ("control-plane/apiserver"), parents
// before their children.
func Names(list []Phase) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(prefix string, ps []Phase)
	walk = func(prefix string, ps []Phase) {
		for _, p := range ps {
			// A group may come twice (control-plane): one name.
			if !seen[prefix+p.Name] {
				seen[prefix+p.Name] = true
				out = append(out, prefix+p.Name)
			}
			walk(prefix+p.Name+"/", p.Children)
		}
	}
	walk("", list)
	return out
}

// Tree renders the phase list for --help.
func Tree(list []Phase) string {
	var b strings.Builder
	var walk func(depth int, ps []Phase)
	walk = func(depth int, ps []Phase) {
		for _, p := range ps {
			fmt.Fprintf(&b, "%s%-*s %s\n", strings.Repeat("  ", depth+1), 22-2*depth, p.Name, p.Short)
			walk(depth+1, p.Children)
		}
	}
	walk(0, list)
	return b.String()
}

// Check returns an error naming flag when a phase name in names is not in
// list.
func Check(list []Phase, flag string, names ...string) error {
	known := map[string]bool{}
	for _, n := range Names(list) {
		known[n] = true
	}
	var bad []string
	for _, n := range names {
		if n != "" && !known[n] {
			bad = append(bad, n)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	all := Names(list)
	sort.Strings(all)
	return fmt.Errorf("%s: unknown phase %s; phases are: %s", flag, strings.Join(bad, ", "), strings.Join(all, ", "))
}

// Merged returns list with the parts of a group that comes more than once
// joined at its first place, for a tree of commands with one per name.
func Merged(list []Phase) []Phase {
	var out []Phase
	at := map[string]int{}
	for _, p := range list {
		if i, ok := at[p.Name]; ok {
			out[i].Children = append(out[i].Children, p.Children...)
			continue
		}
		at[p.Name] = len(out)
		p.Children = append([]Phase(nil), p.Children...)
		out = append(out, p)
	}
	for i := range out {
		out[i].Children = Merged(out[i].Children)
	}
	return out
}

// Execute runs the selected phases in order, reporting each one. It stops at
// the first failure and returns it as an *Error.
func Execute(ctx context.Context, list []Phase, d *Data, opt Options) error {
	if err := Check(list, "--skip-phases", opt.Skip...); err != nil {
		return err
	}
	if err := Check(list, "phase", opt.Only); err != nil {
		return err
	}
	skip := map[string]bool{}
	for _, s := range opt.Skip {
		skip[s] = true
	}
	// One kforge run at a time on a host.
	unlock, err := d.lockHost(ctx)
	if err != nil {
		return &Error{Phase: "lock", Host: d.Host.Name(), Err: err}
	}
	defer unlock()
	var run func(prefix string, ps []Phase, selected bool) error
	run = func(prefix string, ps []Phase, selected bool) error {
		for _, p := range ps {
			name := prefix + p.Name
			if p.API && opt.NoAPI {
				d.Out.SkipOn(d.Host.Name(), name, "talks to the cluster's API: not part of a dry run")
				continue
			}
			if skip[name] {
				d.Out.SkipOn(d.Host.Name(), name, "--skip-phases")
				continue
			}
			sel := selected || opt.Only == "" || opt.Only == name
			if !sel && !strings.HasPrefix(opt.Only, name+"/") {
				continue
			}
			if p.Run != nil && sel {
				done := d.Out.StepOn(d.Host.Name(), name)
				err := p.Run(ctx, d)
				done(err)
				if err != nil {
					return &Error{Phase: name, Host: d.Host.Name(), Err: err}
				}
			}
			if err := run(name+"/", p.Children, sel); err != nil {
				return err
			}
		}
		return nil
	}
	return run("", list, false)
}
