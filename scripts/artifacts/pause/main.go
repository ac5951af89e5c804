// Command pause is the infra ("sandbox") process of a Kubernetes pod, the
// static Go counterpart of Kubernetes' build/pause/linux/pause.c, so the
// pause image can be a single file on an empty base:
//
//   - it does nothing but wait, holding the pod's namespaces open;
//   - as PID 1 of the pod's PID namespace it reaps orphaned children, so
//     no zombies pile up when containers share the namespace;
//   - it exits 0 on SIGINT or SIGTERM;
//   - "-v" prints the version it was built as (set with
//     -ldflags "-X main.version=3.10.1") and exits.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at link time by scripts/build-artifacts.sh.
var version = "HEAD"

func main() {
	for _, arg := range os.Args[1:] {
		if strings.EqualFold(arg, "-v") {
			fmt.Printf("pause %s (kforge, Go)\n", version)
			return
		}
	}
	if os.Getpid() != 1 {
		// Not an error: pause is also run outside pod sandboxes.
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}

	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	// Children may already have exited before the handler was installed.
	reap()
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every child that has exited. SIGCHLD deliveries coalesce,
// so one signal may stand for several children: loop until none is left.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
