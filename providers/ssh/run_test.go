package ssh

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"kforge.dev/kforge/host"
)

func TestRunArgvEnvStdin(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	h := dialT(t, s.config(e, userKey))
	ctx := context.Background()

	words := []string{"a b", `it's`, "$(id)", "`id`", "*", `"q"`, "x;y", ""}
	res, err := h.Run(ctx, host.Cmd{Argv: append([]string{"printf", "[%s]\n"}, words...)})
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, w := range words {
		want.WriteString("[" + w + "]\n")
	}
	if string(res.Stdout) != want.String() {
		t.Errorf("argv came back as\n%s\nwant\n%s", res.Stdout, want.String())
	}

	res, err = h.Run(ctx, host.Cmd{Argv: []string{"sh", "-c", `printf %s "$KFORGE_A|$KFORGE_B"`}, Env: []string{"KFORGE_A=one two", "KFORGE_B=it's"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "one two|it's" {
		t.Errorf("env: got %q", got)
	}

	var live bytes.Buffer
	res, err = h.Run(ctx, host.Cmd{Argv: []string{"cat"}, Stdin: strings.NewReader("line 1\nline 2\n"), Stdout: &live})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "line 1\nline 2\n" || live.String() != string(res.Stdout) {
		t.Errorf("stdin: got %q, streamed %q", res.Stdout, live.String())
	}
}

func TestCommandError(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	h := dialT(t, s.config(e, "root"))
	argv := []string{"sh", "-c", "echo to-stdout; echo kforge-stderr-marker >&2; exit 7"}
	res, err := h.Run(context.Background(), host.Cmd{Argv: argv})
	var ce *host.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a CommandError", err)
	}
	if ce.Result.ExitCode != 7 || res.ExitCode != 7 || ce.Err != nil {
		t.Errorf("exit code %d (result %d), err %v; want 7", ce.Result.ExitCode, res.ExitCode, ce.Err)
	}
	if ce.Host != h.Name() || strings.Join(ce.Argv, " ") != strings.Join(argv, " ") {
		t.Errorf("error names host %q argv %q", ce.Host, ce.Argv)
	}
	// The host is in ce.Host for the reporter, which names it once.
	for _, want := range []string{"`sh -c 'echo to-stdout; echo kforge-stderr-marker >&2; exit 7'`", "exited 7", "kforge-stderr-marker"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if string(res.Stdout) != "to-stdout\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
}

// pgrep lists local processes whose command line contains marker; sshd runs
// on this machine, so the remote processes are visible here.
func pgrep(t *testing.T, marker string) string {
	t.Helper()
	out, _ := exec.Command("pgrep", "-af", marker).Output()
	return strings.TrimSpace(string(out))
}

func TestCancelEndsRemoteCommand(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	for _, tc := range []struct {
		name string
		user string
		sudo bool
	}{
		{"root", "root", false},
		{"user", userKey, false},
		{"sudo-password", userSudo, true},
		{"sudo-nopasswd", userNoPw, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.config(e, tc.user)
			cfg.SudoPassword = sudoPass
			h := dialT(t, cfg)
			marker := "kforge-cancel-" + randomName()
			// A parent shell and a child sleep, both carrying the marker.
			argv := []string{"bash", "-c", "(exec -a " + marker + "-child sleep 300) & wait", marker + "-parent"}

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := h.Run(ctx, host.Cmd{Argv: argv, Sudo: tc.sudo})
				done <- err
			}()
			started := false
			for range 100 {
				if out := pgrep(t, marker); strings.Contains(out, "-child") && strings.Contains(out, "-parent") {
					started = true
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !started {
				cancel()
				t.Fatalf("the command did not start: %q", pgrep(t, marker))
			}
			t.Logf("%s started", time.Now().Format("15:04:05.000"))
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			var left string
			for range 50 {
				if left = pgrep(t, marker); left == "" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s gone", time.Now().Format("15:04:05.000"))
			if left != "" {
				_ = exec.Command("pkill", "-KILL", "-f", marker).Run()
				t.Fatalf("still running after cancel:\n%s", left)
			}
			// The connection is still usable.
			if got := whoami(t, h, false); got != tc.user {
				t.Errorf("after cancel: %q", got)
			}
		})
	}
}
