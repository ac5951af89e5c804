package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// build compiles pause once per test into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=9.9.9", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(build(t), "-V").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "pause 9.9.9") {
		t.Errorf("pause -V printed %q", out)
	}
}

// A shell forks a short-lived child and then execs pause in its own
// process: the child becomes pause's, and pause must reap it when it exits
// instead of leaving a zombie. SIGTERM then ends pause with status 0.
func TestReapsChildrenAndExitsOnSIGTERM(t *testing.T) {
	bin := build(t)
	cmd := exec.Command("/bin/sh", "-c", `sleep 0.2 & echo $!; exec "$0"`, bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child := strings.TrimSpace(line)

	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + child + "/stat")
		if err != nil {
			break // reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %s not reaped: %s", child, stat)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pause after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pause did not exit on SIGTERM")
	}
}
