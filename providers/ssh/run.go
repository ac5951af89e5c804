package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"kforge.dev/kforge/host"
)

// killTimeout bounds the extra session that ends a cancelled command.
const killTimeout = 5 * time.Second

// Run runs cmd.Argv on the host and waits for it. See the package comment
// for how the command line is built and how cancelling ctx ends it.
func (h *Host) Run(ctx context.Context, cmd host.Cmd) (host.Result, error) {
	fail := func(res host.Result, argv []string, err error) (host.Result, error) {
		return res, &host.CommandError{Host: h.Name(), Argv: argv, Result: res, Err: err}
	}
	if len(cmd.Argv) == 0 {
		return fail(host.Result{ExitCode: -1}, nil, errors.New("empty command"))
	}
	words := cmd.Argv
	if len(cmd.Env) > 0 {
		for _, kv := range cmd.Env {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return fail(host.Result{ExitCode: -1}, cmd.Argv, fmt.Errorf("environment entry %q is not KEY=VALUE", kv))
			}
		}
		words = append(append([]string{"env"}, cmd.Env...), words...)
	}
	argv := words // what the error shows: pasteable in a root shell

	mode := sudoNone
	stdin := cmd.Stdin
	if cmd.Sudo {
		var err error
		if mode, err = h.sudoMode(ctx); err != nil {
			return fail(host.Result{ExitCode: -1}, argv, err)
		}
		words = mode.wrap(words)
		if mode == sudoPassword {
			stdin = h.withSudoPassword(stdin)
		}
	}

	var stdout, stderr bytes.Buffer
	code, err := h.exec(ctx, words, stdin, tee(&stdout, cmd.Stdout), tee(&stderr, cmd.Stderr), mode)
	res := host.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code}
	if err != nil || code != 0 {
		return fail(res, argv, err)
	}
	return res, nil
}

// exec runs words in a new session and returns the exit code. On
// cancellation it kills the command's process group, through sudo as mode
// says, and returns ctx's error.
func (h *Host) exec(ctx context.Context, words []string, stdin io.Reader, stdout, stderr io.Writer, mode sudoMode) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	sess, err := h.client.NewSession()
	if err != nil {
		return -1, fmt.Errorf("opening a session: %w", err)
	}
	defer sess.Close()
	pid := &pidWriter{w: stdout, known: make(chan struct{})}
	sess.Stdout = pid
	sess.Stderr = stderr
	in, err := sess.StdinPipe()
	if err != nil {
		return -1, err
	}
	line := "exec /bin/sh -c " + host.ShellQuote([]string{"echo $$; exec " + host.ShellQuote(words)})
	if err := sess.Start(line); err != nil {
		return -1, fmt.Errorf("starting the command: %w", err)
	}
	// Stdin is copied apart from Wait so a reader that never ends cannot
	// keep Run from returning once the command has exited.
	go func() {
		if stdin != nil {
			_, _ = io.Copy(in, stdin)
		}
		_ = in.Close()
	}()
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	select {
	case err = <-done:
	case <-ctx.Done():
		h.killGroup(pid, mode)
		_ = sess.Signal(ssh.SIGKILL)
		select {
		case <-done:
		case <-time.After(killTimeout):
		}
		return -1, ctx.Err()
	}
	var exitErr *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr):
		return exitErr.ExitStatus(), nil
	default:
		return -1, err
	}
}

// killGroup kills the process group whose leader printed its PID, over a
// second session.
func (h *Host) killGroup(pid *pidWriter, mode sudoMode) {
	select {
	case <-pid.known:
	case <-time.After(killTimeout):
		return
	}
	if pid.pid <= 1 {
		return
	}
	sess, err := h.client.NewSession()
	if err != nil {
		return
	}
	defer sess.Close()
	if mode == sudoPassword {
		sess.Stdin = h.withSudoPassword(nil)
	}
	line := host.ShellQuote(mode.wrap([]string{"kill", "-KILL", "--", "-" + strconv.Itoa(pid.pid)}))
	done := make(chan struct{})
	go func() {
		_ = sess.Run(line)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(killTimeout):
	}
}

// pidWriter takes the first line of the command's output, the PID the
// wrapper shell printed, and passes the rest on.
type pidWriter struct {
	w     io.Writer
	head  []byte
	done  bool
	pid   int           // set before known is closed
	known chan struct{} // closed once the PID line has been read
}

func (p *pidWriter) Write(b []byte) (int, error) {
	n := len(b)
	if !p.done {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.head = append(p.head, b...)
			return n, nil
		}
		p.pid, _ = strconv.Atoi(string(append(p.head, b[:i]...)))
		p.done = true
		close(p.known)
		b = b[i+1:]
	}
	if len(b) > 0 {
		if _, err := p.w.Write(b); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func tee(buf *bytes.Buffer, w io.Writer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(buf, w)
}
