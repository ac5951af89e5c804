// Command echo is a tiny web server for testing clusters: every request is
// answered with the host name (in a pod: the pod's name), so a client can
// tell which pod behind a Service answered. GET /healthz answers "ok".
//
// It listens on :8080, or on the address in $ECHO_ADDR, and exits 0 on
// SIGINT or SIGTERM after finishing requests in flight (at most 5 s).
//
// `echo get URL` is the client: it prints URL's body, trying up to 20 times
// half a second apart (names resolve through the pod's /etc/resolv.conf),
// and exits 1 with the last error if every try fails.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "get" {
		os.Exit(get(os.Args[2], 20, 500*time.Millisecond))
	}
	addr := os.Getenv("ECHO_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	host, err := os.Hostname()
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler:           handler(host),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("echo: %s serving on %s", host, l.Addr())
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// handler answers /healthz with "ok" and everything else with host.
func handler(host string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, host)
	})
	return mux
}

// get prints url's body; it tries at most tries times, wait apart.
func get(url string, tries int, wait time.Duration) int {
	client := &http.Client{Timeout: 3 * time.Second}
	var last error
	for i := 0; i < tries; i++ {
		if i > 0 {
			time.Sleep(wait)
		}
		resp, err := client.Get(url)
		if err != nil {
			last = err
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("%s: %s %v", url, resp.Status, err)
			continue
		}
		os.Stdout.Write(body)
		return 0
	}
	fmt.Fprintf(os.Stderr, "echo get: %v\n", last)
	return 1
}
