// Package local is the Host for the machine kforge runs on: commands run
// with os/exec, files are written directly. Rooted gives a Host whose files
// live under a directory instead of /, which is how a dry run writes what
// init would write.
package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"kforge.dev/kforge/host"
)

// Host runs commands and touches files on this machine.
type Host struct {
	root string // "" for the real file system, or a directory files live under
}

var _ host.Host = (*Host)(nil)

// New returns the Host for this machine.
func New() *Host { return &Host{} }

// Rooted returns a Host whose file operations happen under dir: writing
// /etc/kubernetes/admin.conf writes dir/etc/kubernetes/admin.conf.
func Rooted(dir string) *Host { return &Host{root: dir} }

// Name is "localhost".
func (h *Host) Name() string { return "localhost" }

// Close does nothing.
func (h *Host) Close() error { return nil }

// Path maps a host path to the file system path it lives at.
func (h *Host) Path(p string) string {
	if h.root == "" {
		return p
	}
	return filepath.Join(h.root, filepath.Clean("/"+p))
}

// Run runs cmd. Sudo prefixes `sudo -n` when kforge is not root. Cancelling
// ctx kills the command's whole process group.
func (h *Host) Run(ctx context.Context, cmd host.Cmd) (host.Result, error) {
	if len(cmd.Argv) == 0 {
		return host.Result{}, &host.CommandError{Host: h.Name(), Err: errors.New("empty command")}
	}
	argv := cmd.Argv
	if cmd.Sudo && os.Geteuid() != 0 {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = append(os.Environ(), cmd.Env...)
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		var err error
		if stdin, err = c.StdinPipe(); err != nil {
			return host.Result{ExitCode: -1}, &host.CommandError{Host: h.Name(), Argv: cmd.Argv, Result: host.Result{ExitCode: -1}, Err: err}
		}
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = tee(&stdout, cmd.Stdout), tee(&stderr, cmd.Stderr)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		return host.Result{ExitCode: -1}, &host.CommandError{Host: h.Name(), Argv: cmd.Argv, Result: host.Result{ExitCode: -1}, Err: err}
	}
	if stdin != nil {
		// Copied apart from Wait, as over SSH: a reader that never ends
		// cannot keep Run from returning once the command has exited.
		go func() {
			_, _ = io.Copy(stdin, cmd.Stdin)
			_ = stdin.Close()
		}()
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	err := c.Wait()
	close(done)
	res := host.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: c.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		return res, &host.CommandError{Host: h.Name(), Argv: cmd.Argv, Result: res, Err: ctx.Err()}
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return res, &host.CommandError{Host: h.Name(), Argv: cmd.Argv, Result: res}
		}
		return res, &host.CommandError{Host: h.Name(), Argv: cmd.Argv, Result: res, Err: err}
	}
	return res, nil
}

func tee(buf *bytes.Buffer, w io.Writer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(buf, w)
}

// ReadFile reads a file.
func (h *Host) ReadFile(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(h.Path(path))
}

// Stat describes a file.
func (h *Host) Stat(_ context.Context, path string) (fs.FileInfo, error) {
	return os.Stat(h.Path(path))
}

// Remove removes a file or tree; a missing path is fine.
func (h *Host) Remove(_ context.Context, path string) error {
	return os.RemoveAll(h.Path(path))
}

// WriteFile writes data to a temporary file beside path and renames it into
// place, so readers never see a half-written file.
func (h *Host) WriteFile(_ context.Context, path string, data []byte, mode fs.FileMode) error {
	return writeAtomic(h.Path(path), bytes.NewReader(data), mode)
}

// Upload copies localPath to path, skipping the copy when path already has
// the same content.
func (h *Host) Upload(_ context.Context, localPath, path string, mode fs.FileMode) error {
	dst := h.Path(path)
	same, err := sameContent(localPath, dst)
	if err != nil {
		return err
	}
	if same {
		return os.Chmod(dst, mode)
	}
	f, err := os.Open(localPath)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeAtomic(dst, f, mode)
}

func writeAtomic(dst string, r io.Reader, mode fs.FileMode) error {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".kforge-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := io.Copy(tmp, r); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	ok = true
	return nil
}

func sameContent(a, b string) (bool, error) {
	sb, err := os.Stat(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	if sa.Size() != sb.Size() {
		return false, nil
	}
	if os.SameFile(sa, sb) {
		return true, nil
	}
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	// Both are on this machine: comparing the bytes reads each once and
	// stops at the first difference, faster than hashing both.
	n := min(sa.Size(), 1<<20) + 1 // +1: the read that finds the end
	ba, bb := make([]byte, n), make([]byte, n)
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if erra == io.EOF || erra == io.ErrUnexpectedEOF {
			return errb == io.EOF || errb == io.ErrUnexpectedEOF, nil
		}
		if erra != nil {
			return false, erra
		}
		if errb != nil {
			return false, errb
		}
	}
}

// modTime is used by tests to prove a skipped upload left the file alone.
func modTime(p string) time.Time {
	st, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// DialContext opens a TCP connection from this machine.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
