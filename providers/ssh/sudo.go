package ssh

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"kforge.dev/kforge/host"
)

// sudoMode is how a Host becomes root.
type sudoMode int

const (
	sudoUnknown    sudoMode = iota
	sudoNone                // the user is root
	sudoNoPassword          // sudo -n works
	sudoPassword            // sudo -S with Config.SudoPassword
)

func (m sudoMode) wrap(words []string) []string {
	switch m {
	case sudoNoPassword:
		return append([]string{"sudo", "-n", "--"}, words...)
	case sudoPassword:
		// -k: never use cached credentials, so the password line is
		// always read by sudo and never reaches the command.
		return append([]string{"sudo", "-k", "-S", "-p", "", "--"}, words...)
	}
	return words
}

func (h *Host) withSudoPassword(stdin io.Reader) io.Reader {
	pw := strings.NewReader(h.cfg.SudoPassword + "\n")
	if stdin == nil {
		return pw
	}
	return io.MultiReader(pw, stdin)
}

// sudoMode finds out, once per Host, how to become root: not at all for
// root, sudo without a password when the sudoers rules allow it, else sudo
// with Config.SudoPassword.
func (h *Host) sudoMode(ctx context.Context) (sudoMode, error) {
	h.sudoMu.Lock()
	defer h.sudoMu.Unlock()
	if h.sudo != sudoUnknown {
		return h.sudo, nil
	}
	user := h.cfg.user()
	if user == "root" {
		h.sudo = sudoNone
		return h.sudo, nil
	}
	var stderr bytes.Buffer
	code, err := h.exec(ctx, []string{"sudo", "-k", "-n", "true"}, nil, io.Discard, &stderr, sudoNone)
	if err != nil {
		return sudoUnknown, fmt.Errorf("checking sudo: %w", err)
	}
	if code == 0 {
		h.sudo = sudoNoPassword
		return h.sudo, nil
	}
	if h.cfg.SudoPassword == "" {
		return sudoUnknown, probeFailed(h, "sudo asks for a password and none was given: give the sudo password, or allow the user sudo with NOPASSWD", stderr.Bytes())
	}
	stderr.Reset()
	code, err = h.exec(ctx, sudoPassword.wrap([]string{"true"}), h.withSudoPassword(nil), io.Discard, &stderr, sudoNone)
	if err != nil {
		return sudoUnknown, fmt.Errorf("checking sudo: %w", err)
	}
	if code != 0 {
		return sudoUnknown, probeFailed(h, "sudo refused the sudo password: check it, and that sudoers allows the user", stderr.Bytes())
	}
	h.sudo = sudoPassword
	return h.sudo, nil
}

func probeFailed(h *Host, what string, stderr []byte) error {
	return fmt.Errorf("user %s cannot become root: %s%s", h.cfg.user(), what, tailSuffix(stderr))
}

func tailSuffix(out []byte) string {
	if t := host.Tail(out); t != "" {
		return "; sudo said:\n" + t
	}
	return ""
}
