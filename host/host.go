// Package host is kforge's one execution seam. Every change kforge makes to a
// machine goes through a Host: run an argv, read, write, stat and remove
// files, upload a local file. providers/local, providers/ssh, the fake in
// host/fake and the recording dry-run Host in host/dryrun implement it;
// phases never run processes or open connections themselves.
package host

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
)

// Cmd is one command to run on a Host. Argv is never passed through a shell
// by kforge; a provider that must use one (SSH) quotes every word.
type Cmd struct {
	Argv []string
	// Stdin, when set, is copied to the command's standard input. It may
	// be a reader that never ends (an *io.Pipe kept open while the caller
	// runs): Run returns once the command has exited.
	Stdin io.Reader
	// Env holds extra KEY=VALUE pairs for the command.
	Env []string
	// Sudo runs the command as root when the Host's user is not root.
	Sudo bool
	// ReadOnly marks a command that changes nothing on the host (it only
	// gathers facts); a dry run executes these and records the rest.
	ReadOnly bool
	// Stdout and Stderr, when set, also receive the output as it arrives.
	Stdout io.Writer
	Stderr io.Writer
}

// Result is what a finished command printed.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Host is a machine kforge acts on.
type Host interface {
	// Name is how messages refer to the host: its address, or "localhost".
	Name() string
	// Run runs cmd and waits for it. A non-zero exit is a *CommandError
	// carrying the Result. Cancelling ctx ends the command.
	Run(ctx context.Context, cmd Cmd) (Result, error)
	// ReadFile returns a file's contents; a missing file is fs.ErrNotExist.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// WriteFile writes data atomically (a temporary name, then rename),
	// creating parent directories, with the given mode.
	WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error
	// Stat describes a file; a missing file is fs.ErrNotExist.
	Stat(ctx context.Context, path string) (fs.FileInfo, error)
	// Remove removes a file or a directory tree; a missing path is not an
	// error.
	Remove(ctx context.Context, path string) error
	// Upload copies a local file to path with mode, atomically, and skips
	// the transfer when the remote file already has the same sha256.
	Upload(ctx context.Context, localPath, path string, mode fs.FileMode) error
	// Close releases the connection, if any.
	Close() error
}

// Dialer is a Host that opens TCP connections from the machine itself:
// over SSH a connection forwarded by the server (direct-tcpip), locally an
// ordinary one. kforge talks to services a host listens for on loopback
// (etcd's clients) through it, so that they need no port open to the
// machine kforge runs on.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial opens a connection to addr as h sees it, when h can.
func Dial(ctx context.Context, h Host, network, addr string) (net.Conn, error) {
	d, ok := h.(Dialer)
	if !ok {
		return nil, fmt.Errorf("host %s cannot open connections to %s (%T has no dialer)", h.Name(), addr, h)
	}
	return d.DialContext(ctx, network, addr)
}
