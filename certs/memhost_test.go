package certs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"kforge.dev/kforge/host"
)

// memHost is a host.Host whose files live in a map; it runs nothing.
type memHost struct {
	mu     sync.Mutex
	files  map[string]memFile
	writes int
}

type memFile struct {
	data []byte
	mode fs.FileMode
}

var _ host.Host = (*memHost)(nil)

func newMemHost() *memHost { return &memHost{files: map[string]memFile{}} }

func (m *memHost) Name() string { return "mem" }

func (m *memHost) Run(ctx context.Context, cmd host.Cmd) (host.Result, error) {
	return host.Result{}, errors.New("memHost runs no commands")
}

func (m *memHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[path]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), f.data...), nil
}

func (m *memHost) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[path] = memFile{append([]byte(nil), data...), mode}
	m.writes++
	return nil
}

func (m *memHost) Stat(ctx context.Context, path string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[path]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: fs.ErrNotExist}
	}
	return memInfo{filepath.Base(path), f}, nil
}

func (m *memHost) Remove(ctx context.Context, path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.files {
		if p == path || strings.HasPrefix(p, path+"/") {
			delete(m.files, p)
		}
	}
	return nil
}

func (m *memHost) Upload(ctx context.Context, localPath, path string, mode fs.FileMode) error {
	b, err := os.ReadFile(localPath)
	if err != nil {
		return err
	}
	return m.WriteFile(ctx, path, b, mode)
}

func (m *memHost) Close() error { return nil }

func (m *memHost) paths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for p := range m.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (m *memHost) get(t *testing.T, path string) memFile {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[path]
	if !ok {
		t.Fatalf("%s was not written", path)
	}
	return f
}

// dump copies every file under prefix into dir, keeping relative paths.
func (m *memHost) dump(t *testing.T, prefix, dir string) {
	t.Helper()
	for _, p := range m.paths() {
		rel, ok := strings.CutPrefix(p, prefix+"/")
		if !ok {
			continue
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		f := m.get(t, p)
		if err := os.WriteFile(dst, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

type memInfo struct {
	name string
	f    memFile
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return int64(len(i.f.data)) }
func (i memInfo) Mode() fs.FileMode  { return i.f.mode }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
