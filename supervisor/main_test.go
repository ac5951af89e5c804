package supervisor

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/providers/local"
)

// TestMain lets the test binary stand in for kforge: run as
// `BINARY supervise SUB --state-dir DIR ...` it does what cmd/kforge's
// supervise commands do, so that tests start real, detached supervisors
// through the library exactly as phases do.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "supervise":
			os.Exit(superviseMain(os.Args[2:]))
		case "test-start":
			os.Exit(testStartMain(os.Args[2:]))
		case "test-listen":
			os.Exit(testListenMain(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func superviseMain(args []string) int {
	fs := flag.NewFlagSet("supervise", flag.ContinueOnError)
	stateDir := fs.String("state-dir", layout.SupervisorDir, "")
	logDir := fs.String("log-dir", layout.LogDir, "")
	timeout := fs.Duration("timeout", time.Minute, "")
	var services repeated
	fs.Var(&services, "service", "")
	if len(args) == 0 || fs.Parse(args[1:]) != nil || fs.NArg() > 0 {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var err error
	switch args[0] {
	case "run":
		// A short stop timeout keeps the tests that need SIGKILL quick.
		err = Run(ctx, Config{StateDir: *stateDir, LogDir: *logDir, StopTimeout: time.Second})
	case "status":
		err = json.NewEncoder(os.Stdout).Encode(ReadStatus(*stateDir))
	case "reload":
		err = Reload(tctx, *stateDir)
	case "stop":
		err = Shutdown(tctx, *stateDir)
	case "wait":
		err = WaitRunning(tctx, *stateDir, *logDir, services)
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

// testStartMain is a short-lived "kforge" command that starts the
// supervisor through the library and exits: BINARY test-start STATE LOGS.
func testStartMain(args []string) int {
	self, err := os.Executable()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = Start(ctx, local.New(), self, args[0], WithLogDir(args[1]))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testListenMain is a service that listens on a unix socket after a delay:
// BINARY test-listen PATH DELAY.
func testListenMain(args []string) int {
	d, _ := time.ParseDuration(args[1])
	time.Sleep(d)
	os.Remove(args[0])
	l, err := net.Listen("unix", args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		c.Close()
	}
}
