package host

import (
	"context"
	"errors"
	"io/fs"
	"strings"
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
