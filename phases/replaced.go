package phases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// kforgeMark is in every file kforge writes in place of one a host may
// have of its own.
const kforgeMark = "written by kforge"

// replacedFiles are the host files kforge writes over: a host's own
// containerd (runtime: host) or an OS package may have them.
var replacedFiles = []string{layout.ContainerdConfig, layout.ContainerdUnit, layout.CrictlConfig}

// writeReplacing writes files as host.WriteChanged does, first keeping the
// host's own version of each (one without kforge's mark) under
// layout.PreservedDir, once, for reset to put back. It tells whether any
// file changed.
func (d *Data) writeReplacing(ctx context.Context, files ...host.File) (bool, error) {
	for _, f := range files {
		old, err := d.Host.ReadFile(ctx, f.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		keep := path.Join(layout.PreservedDir, f.Path)
		if bytes.Contains(old, []byte(kforgeMark)) {
			continue
		}
		if ok, err := host.Exists(ctx, d.Host, keep); err != nil || ok {
			continue
		}
		if err := d.Host.WriteFile(ctx, keep, old, layout.SecretMode); err != nil {
			return false, fmt.Errorf("keep the host's %s: %w", f.Path, err)
		}
	}
	return host.WriteChanged(ctx, d.Host, files...)
}

// restoreReplaced puts back the host's own files that kforge wrote over
// and removes kforge's where the host had none; a host's file kforge never
// touched stays. It returns what it restored and removed.
func (d *Data) restoreReplaced(ctx context.Context) (restored, removed []string, err error) {
	for _, p := range replacedFiles {
		keep := path.Join(layout.PreservedDir, p)
		old, err := d.Host.ReadFile(ctx, keep)
		switch {
		case err == nil:
			if err := d.Host.WriteFile(ctx, p, old, layout.PublicMode); err != nil {
				return restored, removed, err
			}
			if err := d.Host.Remove(ctx, keep); err != nil {
				return restored, removed, err
			}
			restored = append(restored, p)
			continue
		case !errors.Is(err, fs.ErrNotExist):
			return restored, removed, err
		}
		ours, err := d.ownsFile(ctx, p)
		if err != nil {
			return restored, removed, err
		}
		if ours {
			if err := d.Host.Remove(ctx, p); err != nil {
				return restored, removed, err
			}
			removed = append(removed, p)
		}
	}
	return restored, removed, nil
}

// ownsFile tells whether the file at p is kforge's (has kforge's mark).
func (d *Data) ownsFile(ctx context.Context, p string) (bool, error) {
	data, err := d.Host.ReadFile(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return bytes.Contains(data, []byte(kforgeMark)), nil
}

// foreignContainerd names a containerd that is not the bundle's serving
// containerd's socket (an OS package's, or Docker's on the default
// socket), or "" when there is none.
func (d *Data) foreignContainerd(ctx context.Context) (string, error) {
	out, err := host.Probe(ctx, d.Host, "sh", "-c", `
pid=$(ss -Hxlp 2>/dev/null | awk -v s="$1" '$5 == s {print $NF}' | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
[ -n "$pid" ] || exit 0
echo "$pid $(readlink "/proc/$pid/exe" 2>/dev/null)"`, "sh", layout.ContainerdSocket)
	if err != nil {
		return "", err
	}
	pid, exe, _ := strings.Cut(strings.TrimSpace(out), " ")
	if pid == "" || exe == layout.ContainerdBinary {
		return "", nil
	}
	return fmt.Sprintf("%s (pid %s)", exe, pid), nil
}
