package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Output runs argv as root and returns its trimmed standard output.
func Output(ctx context.Context, h Host, argv ...string) (string, error) {
	res, err := h.Run(ctx, Cmd{Argv: argv, Sudo: true})
	return strings.TrimSpace(string(res.Stdout)), err
}

// Probe runs a read-only command (one that only gathers facts) and returns
// its trimmed standard output. A dry run executes probes.
func Probe(ctx context.Context, h Host, argv ...string) (string, error) {
	res, err := h.Run(ctx, Cmd{Argv: argv, ReadOnly: true})
	return strings.TrimSpace(string(res.Stdout)), err
}

// Exists reports whether path exists on h.
func Exists(ctx context.Context, h Host, path string) (bool, error) {
	_, err := h.Stat(ctx, path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// File is a file as kforge writes it to a host.
type File struct {
	// Path is the absolute path on the host.
	Path string
	Data []byte
	Mode fs.FileMode
}

// WriteChanged writes the files whose content differs from what h has,
// and tells whether any did.
func WriteChanged(ctx context.Context, h Host, files ...File) (bool, error) {
	changed := false
	for _, f := range files {
		old, err := h.ReadFile(ctx, f.Path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		if err == nil && bytes.Equal(old, f.Data) {
			continue
		}
		if err := h.WriteFile(ctx, f.Path, f.Data, f.Mode); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// Script runs a POSIX shell script as root with args as $1, $2, ... and
// returns its trimmed standard output. Scripts given to it must be safe to
// run on a host in any state.
func Script(ctx context.Context, h Host, script string, args ...string) (string, error) {
	return Output(ctx, h, append([]string{"sh", "-c", script, "kforge"}, args...)...)
}

// WaitFor runs argv as root every 100 ms until it succeeds or timeout
// passes; the error then carries the command's last failure. It is not a
// read-only probe: a dry run records the wait instead of waiting for
// something it never started.
func WaitFor(ctx context.Context, h Host, timeout time.Duration, what string, argv ...string) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, last = h.Run(ctx, Cmd{Argv: argv, Sudo: true})
		return last == nil, nil
	})
	if err == nil {
		return nil
	}
	if last == nil {
		last = err
	}
	return fmt.Errorf("%s is not up after %s: %w", what, timeout, last)
}
