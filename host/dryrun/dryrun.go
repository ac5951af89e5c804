// Package dryrun is the Host behind `--dry-run`: every file kforge would
// write lands under an output directory that mirrors host paths, every
// command that would change the host is recorded instead of run, and
// read-only probes still run on the real host so the plan fits it.
package dryrun

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/providers/local"
)

// Host records a plan instead of changing the real host.
type Host struct {
	real  host.Host
	files *local.Host

	mu       sync.Mutex
	written  map[string]fs.FileMode
	removed  []string
	commands []string
}

var _ host.Host = (*Host)(nil)

// New returns a dry-run Host over real that writes files under dir.
func New(real host.Host, dir string) *Host {
	return &Host{real: real, files: local.Rooted(dir), written: map[string]fs.FileMode{}}
}

// Name is the real host's name.
func (h *Host) Name() string { return h.real.Name() }

// Close closes the real host.
func (h *Host) Close() error { return h.real.Close() }

// Run executes read-only probes on the real host and records every other
// command as if it had succeeded with no output.
func (h *Host) Run(ctx context.Context, cmd host.Cmd) (host.Result, error) {
	if cmd.ReadOnly {
		return h.real.Run(ctx, cmd)
	}
	// Input is consumed as the command would, except a stream kept open
	// by the caller (an *io.Pipe), which a command that does not run never
	// reaches the end of.
	if _, stream := cmd.Stdin.(*io.PipeReader); cmd.Stdin != nil && !stream {
		_, _ = io.Copy(io.Discard, cmd.Stdin)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	line := host.ShellQuote(cmd.Argv)
	if len(cmd.Env) > 0 {
		line = strings.Join(cmd.Env, " ") + " " + line
	}
	h.commands = append(h.commands, line)
	return host.Result{}, nil
}

// ReadFile reads from the output directory, so a second dry run sees the
// first one's files (and keeps its CA).
func (h *Host) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return h.files.ReadFile(ctx, path)
}

// Stat describes a file in the output directory.
func (h *Host) Stat(ctx context.Context, path string) (fs.FileInfo, error) {
	return h.files.Stat(ctx, path)
}

// WriteFile writes under the output directory and records the path.
func (h *Host) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	if err := h.files.WriteFile(ctx, path, data, mode); err != nil {
		return err
	}
	h.record(path, mode)
	return nil
}

// Upload copies the file under the output directory and records it.
func (h *Host) Upload(ctx context.Context, localPath, path string, mode fs.FileMode) error {
	if err := h.files.Upload(ctx, localPath, path, mode); err != nil {
		return err
	}
	h.record(path, mode)
	return nil
}

// Remove removes under the output directory and records the path.
func (h *Host) Remove(ctx context.Context, path string) error {
	h.mu.Lock()
	h.removed = append(h.removed, path)
	h.mu.Unlock()
	return h.files.Remove(ctx, path)
}

func (h *Host) record(path string, mode fs.FileMode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.written[path] = mode
}

// Plan is what a dry run would have done.
type Plan struct {
	Files    []PlannedFile
	Removed  []string
	Commands []string
}

// PlannedFile is one file the run would write.
type PlannedFile struct {
	Path string
	Mode fs.FileMode
}

// Plan returns what was recorded, files sorted by path.
func (h *Host) Plan() Plan {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := Plan{Removed: append([]string(nil), h.removed...), Commands: append([]string(nil), h.commands...)}
	for path, mode := range h.written {
		p.Files = append(p.Files, PlannedFile{Path: path, Mode: mode})
	}
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })
	return p
}

// Services are the recorded commands that start or stop long-running
// services.
func (p Plan) Services() []string {
	var out []string
	for _, c := range p.Commands {
		if strings.HasPrefix(c, "systemctl ") || strings.Contains(c, " supervise ") {
			out = append(out, c)
		}
	}
	return out
}

// Write prints the plan for a person, with dir as the output directory.
func (p Plan) Write(w io.Writer, dir string) {
	fmt.Fprintf(w, "Dry run: nothing on the host was changed. Files are under %s.\n", dir)
	fmt.Fprintf(w, "\nFiles (%d):\n", len(p.Files))
	for _, f := range p.Files {
		fmt.Fprintf(w, "  %04o %s\n", f.Mode.Perm(), f.Path)
	}
	if len(p.Removed) > 0 {
		fmt.Fprintf(w, "\nRemoved (%d):\n", len(p.Removed))
		for _, r := range p.Removed {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	fmt.Fprintf(w, "\nCommands (%d):\n", len(p.Commands))
	for _, c := range p.Commands {
		fmt.Fprintf(w, "  %s\n", c)
	}
	svcs := p.Services()
	fmt.Fprintf(w, "\nServices (%d):\n", len(svcs))
	for _, s := range svcs {
		fmt.Fprintf(w, "  %s\n", s)
	}
}
