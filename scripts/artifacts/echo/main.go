// Command echo is a tiny web server for testing clusters: every request is
// answered with the host name (in a pod: the pod's name), so a client can
// tell which pod behind a Service answered. GET /healthz answers "ok".
//
// It listens on :8080, or on the address in $ECHO_ADDR, and exits 0 on
// SIGINT or SIGTERM after finishing requests in flight (at most 5 s).
//
// `echo get URL` is the client: it prints URL's body, trying up to 20 times
// half a second apart (names resolve through the pod's /etc/resolv.conf),
// printing each failed try on stderr with how long it took, and exits 1 with
// the last error if every try fails.
//
// `echo probe URL COUNT INTERVAL` asks URL COUNT times, INTERVAL apart
// (each request bounded by a 2 s timeout), as the pod's service account
// when it has one (its token and the cluster CA), and prints one line:
// "probe: N ok, M failed, longest outage Ds" (the longest time between
// two answers, slow ones included; about INTERVAL when nothing was
// lost). It exits 0.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "get" {
		os.Exit(get(os.Args[2], 20, 500*time.Millisecond))
	}
	if len(os.Args) == 5 && os.Args[1] == "probe" {
		os.Exit(probe(os.Args[2], os.Args[3], os.Args[4]))
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
	var took time.Duration
	for i := 0; i < tries; i++ {
		if i > 0 {
			fmt.Fprintf(os.Stderr, "echo get: try %d failed after %.3fs: %v\n", i, took.Seconds(), last)
			time.Sleep(wait)
		}
		start := time.Now()
		resp, err := client.Get(url)
		took = time.Since(start)
		if err != nil {
			last = err
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took = time.Since(start)
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

// serviceAccount is where a pod's service account token and CA are.
const serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount"

// probe asks url count times, interval apart, and prints how many answers
// came and the longest gap between two answers: with answers every
// interval, a gap of about the interval; a slow or failed request widens
// it by the time the API was not answering.
func probe(url, count, interval string) int {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || n > 100000 {
		fmt.Fprintf(os.Stderr, "echo probe: COUNT %q: want 1 to 100000\n", count)
		return 2
	}
	every, err := time.ParseDuration(interval)
	if err != nil || every < 10*time.Millisecond {
		fmt.Fprintf(os.Stderr, "echo probe: INTERVAL %q: want a duration of 10ms or more\n", interval)
		return 2
	}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{}}
	if ca, err := os.ReadFile(serviceAccount + "/ca.crt"); err == nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		tr.TLSClientConfig.RootCAs = pool
	}
	token, _ := os.ReadFile(serviceAccount + "/token")
	client := &http.Client{Timeout: 2 * time.Second, Transport: tr}
	ok, failed := 0, 0
	began := time.Now()
	lastOK := began
	var longest time.Duration
	var lastErr error
	for i := 0; i < n; i++ {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if len(token) > 0 {
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s", resp.Status)
			}
		}
		if err != nil {
			failed++
			lastErr = err
		} else {
			ok++
			now := time.Now()
			longest = max(longest, now.Sub(lastOK))
			lastOK = now
		}
		if d := every - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	longest = max(longest, time.Since(lastOK))
	fmt.Printf("probe: %d ok, %d failed, longest outage %.1fs", ok, failed, longest.Seconds())
	if lastErr != nil {
		fmt.Printf(" (last error: %v)", lastErr)
	}
	fmt.Println()
	return 0
}
