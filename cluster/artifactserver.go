package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"kforge.dev/kforge/artifacts"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

// ArtifactsFromFlag is the hidden join flag that names the control plane's
// artifact server.
const ArtifactsFromFlag = "artifacts-from"

// ServeArtifactsReady is the line `kforge serve-artifacts` prints once it
// listens; the kforge that started it waits for it.
const ServeArtifactsReady = "kforge artifact server listening on "

// ServeArtifacts serves this control plane's copy of kforge and of its
// bundle (what its workers install) to clients presenting token, until ctx
// ends. ready gets the address once it listens; log a line per request and,
// at the end, the bytes sent to each client.
func ServeArtifacts(ctx context.Context, listen, token string, log io.Writer, ready func(addr string)) error {
	raw, err := os.ReadFile(layout.BundleManifest)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("artifact server: no %s: this control plane was not built from a bundle by this kforge (kforge init -f stores it)", layout.BundleManifest)
	}
	if err != nil {
		return err
	}
	files, err := phases.ArtifactFiles(raw)
	if err != nil {
		return err
	}
	s, err := artifacts.NewServer(token, files, log)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("artifact server: %w", err)
	}
	ready(l.Addr().String())
	err = artifacts.Serve(ctx, l, s, path.Join(layout.PKIDir, "apiserver.crt"), path.Join(layout.PKIDir, "apiserver.key"))
	sent := s.Sent()
	clients := make([]string, 0, len(sent))
	for c := range sent {
		clients = append(clients, c)
	}
	sort.Strings(clients)
	for _, c := range clients {
		fmt.Fprintf(log, "sent %d bytes to %s\n", sent[c], c)
	}
	return err
}

// artifactServer is a control plane's artifact server that a join run
// started there over the control plane's connection; it runs until stop.
type artifactServer struct {
	url  string
	stop func()
}

// startArtifactServer starts `kforge serve-artifacts` on the control plane
// of d, with token on its standard input, and waits (at most 20 s) for it
// to listen. It returns nil, and says why, when the server cannot start:
// the run then sends the artifacts from this machine as before.
func startArtifactServer(ctx context.Context, d *phases.Data, token string, out *reporter.Reporter) *artifactServer {
	stdin, in := io.Pipe()
	lines, stdout := io.Pipe()
	logw := out.Log()
	if logw == nil {
		logw = io.Discard
	}
	stderr := &tailWriter{w: logw, prefix: d.Host.Name() + " artifact server: "}
	listen := ":" + strconv.Itoa(artifacts.Port)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		_, err := d.Host.Run(sctx, host.Cmd{Argv: []string{layout.KforgeBinary, "serve-artifacts", "--listen", listen}, Sudo: true, Stdin: stdin, Stdout: stdout, Stderr: stderr})
		stdout.Close()
		done <- err
	}()
	go func() { _, _ = io.WriteString(in, token+"\n") }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(lines)
		ok := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), ServeArtifactsReady) && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		_, _ = io.Copy(io.Discard, lines)
	}()
	stop := func() {
		in.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		cancel()
	}
	select {
	case ok := <-ready:
		if ok {
			url := "https://" + net.JoinHostPort(d.AdvertiseAddress, strconv.Itoa(artifacts.Port))
			out.Logf("artifact server of %s: %s", d.Host.Name(), url)
			return &artifactServer{url: url, stop: stop}
		}
	case <-time.After(20 * time.Second):
	}
	stop()
	out.Infof("  ! the artifact server on %s did not start (%s): the workers get kforge and the bundle from this machine", d.Host.Name(), stderr.last())
	return nil
}

// tailWriter passes lines on with a prefix and keeps the last one.
type tailWriter struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	tail   string
}

func (t *tailWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimRight(string(b), "\n")
	if s != "" {
		t.tail = s[strings.LastIndex(s, "\n")+1:]
		for _, l := range strings.Split(s, "\n") {
			fmt.Fprintln(t.w, t.prefix+l)
		}
	}
	return len(b), nil
}

func (t *tailWriter) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tail == "" {
		return "no output"
	}
	return t.tail
}
