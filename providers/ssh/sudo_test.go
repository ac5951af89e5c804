package ssh

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"kforge.dev/kforge/host"
)

// localStat stats p on this machine (the test sshd runs here), so tests can
// check what a Host did without going through it.
func localStat(t *testing.T, p string) (fs.FileInfo, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi, fi.Sys().(*syscall.Stat_t)
}

// uploadLeftovers lists the staging directories a non-root Upload creates
// in /tmp that are owned by uid.
func uploadLeftovers(t *testing.T, uid uint32) []string {
	t.Helper()
	matches, err := filepath.Glob("/tmp/.kforge-upload-*")
	if err != nil {
		t.Fatal(err)
	}
	var own []string
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Sys().(*syscall.Stat_t).Uid == uid {
			own = append(own, m)
		}
	}
	return own
}

func TestSudo(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	ctx := context.Background()
	for _, tc := range []struct {
		name, user string
	}{
		// The password is set for the NOPASSWD user too: it must never
		// reach a command's standard input.
		{"nopasswd", userNoPw},
		{"password", userSudo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.config(e, tc.user)
			cfg.SudoPassword = sudoPass
			h := dialT(t, cfg)

			if got := whoami(t, h, false); got != tc.user {
				t.Fatalf("without sudo: running as %q, want %q", got, tc.user)
			}
			res, err := h.Run(ctx, host.Cmd{Argv: []string{"id", "-u"}, Sudo: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(res.Stdout)); got != "0" {
				t.Errorf("with sudo: uid %q, want 0", got)
			}
			res, err = h.Run(ctx, host.Cmd{Argv: []string{"cat"}, Stdin: strings.NewReader("first\nsecond\n"), Sudo: true})
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Stdout) != "first\nsecond\n" {
				t.Errorf("stdin through sudo arrived as %q", res.Stdout)
			}

			// t.TempDir is root's and 0700: the user cannot even look in.
			dir := t.TempDir()
			if _, err := h.Run(ctx, host.Cmd{Argv: []string{"ls", dir}}); err == nil {
				t.Fatalf("%s can read %s without sudo; the test proves nothing", tc.user, dir)
			}
			conf := filepath.Join(dir, "etc", "kforge", "app.conf")
			data := []byte("key: value\n")
			if err := h.WriteFile(ctx, conf, data, 0o640); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(conf); err != nil || string(got) != string(data) {
				t.Fatalf("WriteFile left %q, %v", got, err)
			}
			if fi, st := localStat(t, conf); fi.Mode() != 0o640 || st.Uid != 0 || st.Gid != 0 {
				t.Errorf("WriteFile: mode %v owner %d:%d, want -rw-r----- 0:0", fi.Mode(), st.Uid, st.Gid)
			}
			got, err := h.ReadFile(ctx, conf)
			if err != nil || string(got) != string(data) {
				t.Errorf("ReadFile: %q, %v", got, err)
			}
			fi, err := h.Stat(ctx, conf)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != int64(len(data)) || fi.Mode() != 0o640 || fi.IsDir() || fi.Name() != "app.conf" {
				t.Errorf("Stat: size %d mode %v dir %v name %q", fi.Size(), fi.Mode(), fi.IsDir(), fi.Name())
			}
			if fi, err := h.Stat(ctx, filepath.Dir(conf)); err != nil || !fi.IsDir() {
				t.Errorf("Stat of the parent: %v, %v", fi, err)
			}

			local := filepath.Join(t.TempDir(), "tool")
			payload := []byte("#!/bin/sh\necho kforge\n")
			if err := os.WriteFile(local, payload, 0o600); err != nil {
				t.Fatal(err)
			}
			uid := userID(t, tc.user)
			before := len(uploadLeftovers(t, uid))
			bin := filepath.Join(dir, "bin", "tool")
			if err := h.Upload(ctx, local, bin, 0o755); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(bin); err != nil || string(got) != string(payload) {
				t.Fatalf("Upload left %q, %v", got, err)
			}
			if fi, st := localStat(t, bin); fi.Mode() != 0o755 || st.Uid != 0 {
				t.Errorf("Upload: mode %v owner %d, want -rwxr-xr-x root", fi.Mode(), st.Uid)
			}
			if n := h.transfers.Load(); n != 1 {
				t.Errorf("%d transfers, want 1", n)
			}
			if left := uploadLeftovers(t, uid); len(left) != before {
				t.Errorf("Upload left its staging directory behind: %v", left)
			}
			res, err = h.Run(ctx, host.Cmd{Argv: []string{bin}, Sudo: true})
			if err != nil || string(res.Stdout) != "kforge\n" {
				t.Errorf("running the upload: %q, %v", res.Stdout, err)
			}

			if err := h.Remove(ctx, filepath.Join(dir, "etc")); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(conf); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Remove: %v", err)
			}
			if _, err := h.Stat(ctx, conf); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat after Remove: %v, want fs.ErrNotExist", err)
			}
			if _, err := h.ReadFile(ctx, conf); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ReadFile after Remove: %v, want fs.ErrNotExist", err)
			}
			if err := h.Remove(ctx, conf); err != nil {
				t.Errorf("removing a missing path: %v", err)
			}
		})
	}
}

func userID(t *testing.T, user string) uint32 {
	t.Helper()
	out, err := exec.Command("id", "-u", user).Output()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

func TestSudoRefused(t *testing.T) {
	e := setup(t)
	s := startSSHD(t, e)
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, password, want string
	}{
		{"wrong password", userSudo, "not-the-sudo-password", "sudo refused the sudo password"},
		{"no password", userSudo, "", "sudo asks for a password and none was given"},
		// The right login password, but no sudoers rule.
		{"not in sudoers", userKey, loginPassword, "sudo refused the sudo password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.config(e, tc.user)
			cfg.SudoPassword = tc.password
			h := dialT(t, cfg)
			_, err := h.Run(ctx, host.Cmd{Argv: []string{"true"}, Sudo: true})
			if err == nil {
				t.Fatal("Run with sudo succeeded")
			}
			t.Logf("refused: %v", err)
			var ce *host.CommandError
			if !errors.As(err, &ce) || ce.Host != h.Name() {
				t.Errorf("error %v does not carry the host %s", err, h.Name())
			}
			for _, want := range []string{tc.want, "user " + tc.user + " cannot become root"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Errorf("error %q shows the password", err)
			}
			p := filepath.Join(t.TempDir(), "file")
			if err := h.WriteFile(ctx, p, []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("WriteFile: %v, want an error saying %q", err, tc.want)
			}
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("WriteFile without root wrote the file: %v", err)
			}
		})
	}
}
