package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"kforge.dev/kforge/host"
)

// missingCode is the exit code the file scripts use for "no such file", so
// it is told apart from other failures without parsing messages.
const missingCode = 44

// asRoot runs argv as root (directly, or through sudo for other users).
func (h *Host) asRoot(ctx context.Context, stdin []byte, argv ...string) (host.Result, error) {
	cmd := host.Cmd{Argv: argv, Sudo: true}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return h.Run(ctx, cmd)
}

// script runs a sh -c script as root with args as $1, $2, ...
func (h *Host) script(ctx context.Context, stdin []byte, script string, args ...string) (host.Result, error) {
	return h.asRoot(ctx, stdin, append([]string{"sh", "-c", script, "sh"}, args...)...)
}

func (h *Host) notExist(op, p string) error {
	return fmt.Errorf("%w", &fs.PathError{Op: op, Path: p, Err: fs.ErrNotExist})
}

func isMissing(err error) bool {
	var ce *host.CommandError
	return errors.As(err, &ce) && ce.Err == nil && ce.Result.ExitCode == missingCode
}

// ReadFile returns the file's contents, read as root.
func (h *Host) ReadFile(ctx context.Context, p string) ([]byte, error) {
	res, err := h.script(ctx, nil, `[ -e "$1" ] || exit 44; exec cat -- "$1"`, p)
	if isMissing(err) {
		return nil, h.notExist("read", p)
	}
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

// Stat describes the file p (following symlinks), as root sees it.
func (h *Host) Stat(ctx context.Context, p string) (fs.FileInfo, error) {
	res, err := h.script(ctx, nil, `[ -e "$1" ] || exit 44; exec stat -L -c '%s %f %Y' -- "$1"`, p)
	if isMissing(err) {
		return nil, h.notExist("stat", p)
	}
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) != 3 {
		return nil, fmt.Errorf("stat %s: unexpected output %q", p, res.Stdout)
	}
	size, err1 := strconv.ParseInt(f[0], 10, 64)
	raw, err2 := strconv.ParseUint(f[1], 16, 32)
	mtime, err3 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("stat %s: %w", p, err)
	}
	return &fileInfo{name: path.Base(p), size: size, mode: fileMode(uint32(raw)), modTime: time.Unix(mtime, 0)}, nil
}

// Remove removes p and everything under it; a missing p is fine.
func (h *Host) Remove(ctx context.Context, p string) error {
	if clean := path.Clean(p); p == "" || clean == "/" || clean == "." {
		return fmt.Errorf("refusing to remove %q", p)
	}
	_, err := h.asRoot(ctx, nil, "rm", "-rf", "--", p)
	return err
}

// writeScript writes stdin to a temporary file next to $2, sets mode $3 and
// renames it to $2, creating the directory $1 first. A directory at $2 is
// an error: mv would move the file into it and succeed.
const writeScript = `set -e
if [ -d "$2" ]; then echo "$2 is a directory" >&2; exit 1; fi
mkdir -p -- "$1"
t=$(mktemp "$1/.kforge-XXXXXXXX")
trap 'rm -f -- "$t"' EXIT
cat > "$t"
chmod "$3" "$t"
mv -f -- "$t" "$2"
trap - EXIT`

// WriteFile writes data to p atomically, as root: see the package comment.
func (h *Host) WriteFile(ctx context.Context, p string, data []byte, mode fs.FileMode) error {
	if data == nil {
		data = []byte{}
	}
	_, err := h.script(ctx, data, writeScript, dirArg(p), p, octal(mode))
	return err
}

// dirArg is p's directory, made safe to pass where a leading "-" would be
// read as an option.
func dirArg(p string) string {
	d := path.Dir(p)
	if !strings.HasPrefix(d, "/") && !strings.HasPrefix(d, ".") {
		d = "./" + d
	}
	return d
}

// octal renders mode's permission and setuid, setgid and sticky bits for
// chmod.
func octal(mode fs.FileMode) string {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return strconv.FormatUint(uint64(m), 8)
}

// fileMode converts a raw st_mode to an fs.FileMode.
func fileMode(raw uint32) fs.FileMode {
	m := fs.FileMode(raw & 0o777)
	if raw&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if raw&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if raw&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch raw & 0o170000 {
	case 0o040000:
		m |= fs.ModeDir
	case 0o120000:
		m |= fs.ModeSymlink
	case 0o010000:
		m |= fs.ModeNamedPipe
	case 0o140000:
		m |= fs.ModeSocket
	case 0o020000:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		m |= fs.ModeDevice
	}
	return m
}

type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.modTime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }
