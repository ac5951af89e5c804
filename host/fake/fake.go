// Package fake is an in-memory Host for unit tests: files live in a map,
// commands are answered by scripted handlers and every call is recorded.
package fake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"kforge.dev/kforge/host"
)

// File is one file on the fake host.
type File struct {
	Data []byte
	Mode fs.FileMode
}

// Answer is a scripted reply to a command.
type Answer struct {
	Stdout, Stderr string
	ExitCode       int
}

type handler struct {
	prefix []string
	answer func(host.Cmd) Answer
}

// Host is an in-memory host.Host.
type Host struct {
	name string

	mu       sync.Mutex
	files    map[string]File
	handlers []handler
	calls    []host.Cmd
	uploads  int
}

var _ host.Host = (*Host)(nil)

// New returns an empty fake host called name.
func New(name string) *Host {
	return &Host{name: name, files: map[string]File{}}
}

// Installed returns a fake host called name on which every command
// succeeds and every tool is installed: `sh -c 'command -v "$1"' sh NAME`
// answers /usr/bin/NAME.
func Installed(name string) *Host {
	h := New(name)
	h.On(Answer{})
	h.OnFunc(func(c host.Cmd) Answer {
		if strings.HasPrefix(c.Argv[2], "command -v") && len(c.Argv) > 4 {
			return Answer{Stdout: "/usr/bin/" + c.Argv[4] + "\n"}
		}
		return Answer{}
	}, "sh", "-c")
	return h
}

// On answers every command whose argv starts with prefix. Later handlers
// win over earlier ones, so a test can override a default.
func (h *Host) On(a Answer, prefix ...string) {
	h.OnFunc(func(host.Cmd) Answer { return a }, prefix...)
}

// OnFunc answers commands starting with prefix by calling f.
func (h *Host) OnFunc(f func(host.Cmd) Answer, prefix ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handlers = append(h.handlers, handler{prefix: prefix, answer: f})
}

// Calls returns every command run so far, as shell lines.
func (h *Host) Calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.calls))
	for i, c := range h.calls {
		out[i] = host.ShellQuote(c.Argv)
	}
	return out
}

// Uploads is how many uploads actually transferred data.
func (h *Host) Uploads() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.uploads
}

// Files returns a copy of the file table.
func (h *Host) Files() map[string]File {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]File, len(h.files))
	for k, v := range h.files {
		out[k] = v
	}
	return out
}

// Paths lists the files, sorted.
func (h *Host) Paths() []string {
	fs := h.Files()
	out := make([]string, 0, len(fs))
	for p := range fs {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Close does nothing.
func (h *Host) Close() error { return nil }

// Run answers from the handlers; a command nobody scripted exits 127.
func (h *Host) Run(ctx context.Context, cmd host.Cmd) (host.Result, error) {
	// A pipe is a stream kept open while the caller runs; other readers
	// are read whole for the test to see.
	if _, stream := cmd.Stdin.(*io.PipeReader); cmd.Stdin != nil && !stream {
		b, _ := io.ReadAll(cmd.Stdin)
		cmd.Stdin = bytes.NewReader(b)
	}
	h.mu.Lock()
	h.calls = append(h.calls, cmd)
	var match *handler
	for i := len(h.handlers) - 1; i >= 0; i-- {
		if hasPrefix(cmd.Argv, h.handlers[i].prefix) {
			match = &h.handlers[i]
			break
		}
	}
	h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return host.Result{}, &host.CommandError{Host: h.name, Argv: cmd.Argv, Err: err}
	}
	a := Answer{Stderr: "fake host: no scripted answer", ExitCode: 127}
	if match != nil {
		a = match.answer(cmd)
	}
	res := host.Result{Stdout: []byte(a.Stdout), Stderr: []byte(a.Stderr), ExitCode: a.ExitCode}
	if cmd.Stdout != nil {
		cmd.Stdout.Write(res.Stdout)
	}
	if cmd.Stderr != nil {
		cmd.Stderr.Write(res.Stderr)
	}
	if a.ExitCode != 0 {
		return res, &host.CommandError{Host: h.name, Argv: cmd.Argv, Result: res}
	}
	return res, nil
}

func hasPrefix(argv, prefix []string) bool {
	if len(prefix) > len(argv) {
		return false
	}
	for i := range prefix {
		if argv[i] != prefix[i] {
			return false
		}
	}
	return true
}

// ReadFile returns a file's contents.
func (h *Host) ReadFile(_ context.Context, p string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.files[path.Clean(p)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), f.Data...), nil
}

// WriteFile stores a file.
func (h *Host) WriteFile(_ context.Context, p string, data []byte, mode fs.FileMode) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files[path.Clean(p)] = File{Data: append([]byte(nil), data...), Mode: mode}
	return nil
}

// Stat describes a file or a directory that holds files.
func (h *Host) Stat(_ context.Context, p string) (fs.FileInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p = path.Clean(p)
	if f, ok := h.files[p]; ok {
		return info{name: path.Base(p), size: int64(len(f.Data)), mode: f.Mode}, nil
	}
	for q := range h.files {
		if strings.HasPrefix(q, p+"/") {
			return info{name: path.Base(p), mode: fs.ModeDir | 0o755}, nil
		}
	}
	return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
}

// Remove deletes a file or every file under a directory.
func (h *Host) Remove(_ context.Context, p string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p = path.Clean(p)
	for q := range h.files {
		if q == p || strings.HasPrefix(q, p+"/") {
			delete(h.files, q)
		}
	}
	return nil
}

// Upload reads the local file and stores it, skipping identical content.
func (h *Host) Upload(ctx context.Context, localPath, p string, mode fs.FileMode) error {
	data, err := os.ReadFile(localPath)
	if err != nil {
		return fmt.Errorf("upload %s: %w", localPath, err)
	}
	if old, err := h.ReadFile(ctx, p); err == nil && bytes.Equal(old, data) {
		return nil
	}
	h.mu.Lock()
	h.uploads++
	h.mu.Unlock()
	return h.WriteFile(ctx, p, data, mode)
}

type info struct {
	name string
	size int64
	mode fs.FileMode
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return nil }
