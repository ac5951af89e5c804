package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHandlerAnswersHostname(t *testing.T) {
	srv := httptest.NewServer(handler("pod-a"))
	defer srv.Close()
	for path, want := range map[string]string{"/": "pod-a\n", "/anything": "pod-a\n", "/healthz": "ok\n"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, b, want)
		}
	}
}

// TestServesAndStopsOnSIGTERM runs the built program: it must answer with
// the machine's host name and exit 0 on SIGTERM.
func TestServesAndStopsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "echo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ECHO_ADDR=127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	_, addr, ok := strings.Cut(strings.TrimSpace(line), "serving on ")
	if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("first log line %q does not name the listening address", line)
	}
	host, _ := os.Hostname()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != host+"\n" {
		t.Errorf("answer %q, want %q", b, host+"\n")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGTERM")
	}
}

func TestGetRetriesThenFails(t *testing.T) {
	srv := httptest.NewServer(handler("pod-b"))
	defer srv.Close()
	if code := get(srv.URL+"/", 1, 0); code != 0 {
		t.Fatalf("get from a live server exited %d", code)
	}
	start := time.Now()
	if code := get("http://127.0.0.1:1/", 3, 10*time.Millisecond); code != 1 {
		t.Fatalf("get from a closed port exited %d, want 1", code)
	}
	if time.Since(start) > 15*time.Second {
		t.Fatalf("3 tries took %s", time.Since(start))
	}
}

func TestProbeCountsAnswersAndOutages(t *testing.T) {
	var n int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 2 || n == 3 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	out := captureStdout(t, func() {
		if rc := probe(srv.URL, "5", "20ms"); rc != 0 {
			t.Errorf("probe exited %d", rc)
		}
	})
	if !strings.HasPrefix(out, "probe: 3 ok, 2 failed, longest outage 0.") || !strings.Contains(out, "503 Service Unavailable") {
		t.Errorf("probe printed %q", out)
	}
	if rc := probe(srv.URL, "0", "20ms"); rc != 2 {
		t.Errorf("a count of 0: exit %d, want 2", rc)
	}
}

// captureStdout returns what fn writes to standard output.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = old }()
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	fn()
	w.Close()
	os.Stdout = old
	return <-done
}
