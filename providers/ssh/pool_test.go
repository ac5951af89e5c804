package ssh

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"kforge.dev/kforge/host"
)

func newPoolT(t *testing.T) *Pool {
	t.Helper()
	p := NewPool()
	t.Cleanup(func() { p.Close() })
	return p
}

func getT(t *testing.T, p *Pool, cfg Config) *Host {
	t.Helper()
	h, err := p.Get(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Get %s: %v", cfg.Key(), err)
	}
	return h
}

func TestPoolSharesOneConnection(t *testing.T) {
	e := setup(t)
	px := startProxy(t, startSSHD(t, e))
	p := newPoolT(t)
	cfg := px.config(e, "root")

	h1 := getT(t, p, cfg)
	h2 := getT(t, p, cfg)
	if h1 != h2 {
		t.Errorf("two Gets of one Config returned two Hosts")
	}
	if n := px.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if got := whoami(t, h2, false); got != "root" {
		t.Errorf("logged in as %q", got)
	}

	// Another user on the same host is another connection.
	other := getT(t, p, px.config(e, userKey))
	if other == h1 || whoami(t, other, false) != userKey {
		t.Errorf("Get for %s returned the root connection", userKey)
	}
	if n := px.accepted.Load(); n != 2 {
		t.Errorf("%d connections after a second user, want 2", n)
	}
}

func TestPoolConcurrentGetsDialOnce(t *testing.T) {
	e := setup(t)
	px := startProxy(t, startSSHD(t, e))
	p := newPoolT(t)
	cfg := px.config(e, "root")

	const callers = 8
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		hosts [callers]*Host
		errs  [callers]error
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			hosts[i], errs[i] = p.Get(ctx, cfg)
		}()
	}
	close(start)
	wg.Wait() // every Get is bounded by its context
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("Get %d: %v", i, errs[i])
		}
		if hosts[i] != hosts[0] {
			t.Errorf("Get %d returned another Host", i)
		}
	}
	if n := px.accepted.Load(); n != 1 {
		t.Errorf("%d concurrent Gets opened %d connections, want 1", callers, n)
	}
}

func TestPoolRedials(t *testing.T) {
	e := setup(t)
	px := startProxy(t, startSSHD(t, e))
	p := newPoolT(t)
	cfg := px.config(e, "root")

	// A Host closed by its user is replaced at once, without waiting for
	// the connection's reader to notice (a few rounds, as that is a race).
	const rounds = 5
	h2 := getT(t, p, cfg)
	for i := range rounds {
		h2.Close()
		h := getT(t, p, cfg)
		if h == h2 {
			t.Fatalf("round %d: Get after Close returned the closed Host", i)
		}
		h2 = h
	}
	if got := whoami(t, h2, false); got != "root" {
		t.Errorf("after redial: %q", got)
	}
	if n := px.accepted.Load(); n != rounds+1 {
		t.Errorf("%d connections, want %d", n, rounds+1)
	}

	// A dropped connection is replaced once the Host has noticed.
	px.drop()
	if !eventually(func() bool { return !h2.alive() }) {
		t.Fatal("the Host did not notice its connection dropped")
	}
	h3 := getT(t, p, cfg)
	if h3 == h2 {
		t.Fatal("Get after a drop returned the dead Host")
	}
	if got := whoami(t, h3, false); got != "root" {
		t.Errorf("after the drop: %q", got)
	}
	if n := px.accepted.Load(); n != rounds+2 {
		t.Errorf("%d connections, want %d", n, rounds+2)
	}

	// Closing the pool closes its Hosts; later Gets fail.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if h3.alive() {
		t.Error("a Host is alive after its Pool was closed")
	}
	if _, err := h3.Run(context.Background(), host.Cmd{Argv: []string{"true"}}); err == nil {
		t.Error("a Host still runs commands after its Pool was closed")
	}
	if _, err := p.Get(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Get after Close: %v, want an error saying the pool is closed", err)
	}
	if n := px.accepted.Load(); n != rounds+2 {
		t.Errorf("%d connections after the pool was closed, want %d", n, rounds+2)
	}
}
