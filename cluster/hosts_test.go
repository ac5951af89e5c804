package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/reporter"
)

func testHosts(n int) []config.Host {
	hosts := make([]config.Host, n)
	for i := range hosts {
		hosts[i] = config.Host{Address: fmt.Sprintf("10.0.0.%d", i+1), Role: config.RoleWorker}
	}
	return hosts
}

// TestForEachHostKeepsTheHostsOrder has the first hosts finish last: the
// results still come in the hosts' order, each with its host's address
// (whatever fn put there) and how long fn took on it.
func TestForEachHostKeepsTheHostsOrder(t *testing.T) {
	hosts := testHosts(4)
	sleep := map[string]time.Duration{}
	for i, n := range hosts {
		sleep[n.Address] = time.Duration(len(hosts)-i) * 15 * time.Millisecond
	}
	results := forEachHost(context.Background(), hosts, len(hosts), func(_ context.Context, n config.Host) HostResult {
		time.Sleep(sleep[n.Address])
		return HostResult{Host: "set by fn", Outcome: "slept " + sleep[n.Address].String()}
	})
	if len(results) != len(hosts) {
		t.Fatalf("%d results for %d hosts", len(results), len(hosts))
	}
	for i, r := range results {
		want := sleep[hosts[i].Address]
		if r.Host != hosts[i].Address || r.Outcome != "slept "+want.String() {
			t.Errorf("result %d: host %q outcome %q, want %s after sleeping %s", i, r.Host, r.Outcome, hosts[i].Address, want)
		}
		if r.Duration < want {
			t.Errorf("%s: duration %s, but fn took at least %s", r.Host, r.Duration, want)
		}
	}
}

// TestForEachHostLimit counts the calls running at once: never more than
// the limit (DefaultParallel for 0), and the limit is reached.
func TestForEachHostLimit(t *testing.T) {
	for _, c := range []struct{ limit, want int }{{1, 1}, {3, 3}, {0, DefaultParallel}, {-1, DefaultParallel}} {
		t.Run(fmt.Sprint("limit ", c.limit), func(t *testing.T) {
			hosts := testHosts(12)
			var running, most, calls atomic.Int32
			started := make(chan struct{}, len(hosts))
			release := make(chan struct{})
			done := make(chan []HostResult)
			go func() {
				done <- forEachHost(context.Background(), hosts, c.limit, func(context.Context, config.Host) HostResult {
					calls.Add(1)
					n := running.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					started <- struct{}{}
					<-release
					running.Add(-1)
					return HostResult{Outcome: "ok"}
				})
			}()
			for i := range c.want {
				select {
				case <-started:
				case <-time.After(10 * time.Second):
					t.Fatalf("only %d of %d calls started", i, c.want)
				}
			}
			select {
			case <-started:
				t.Errorf("a call beyond the limit of %d started while %d ran", c.want, c.want)
			case <-time.After(100 * time.Millisecond):
			}
			close(release)
			results := <-done
			if m := most.Load(); m != int32(c.want) {
				t.Errorf("at most %d calls ran at once, want %d", m, c.want)
			}
			if n := calls.Load(); n != int32(len(hosts)) || len(results) != len(hosts) {
				t.Errorf("%d calls and %d results for %d hosts", n, len(results), len(hosts))
			}
		})
	}
}

// TestForEachHostOneFailureStopsNothing fails the first host at once: the
// others still run to the end, and only its result carries the error.
func TestForEachHostOneFailureStopsNothing(t *testing.T) {
	hosts := testHosts(5)
	var calls atomic.Int32
	results := forEachHost(context.Background(), hosts, 2, func(ctx context.Context, n config.Host) HostResult {
		calls.Add(1)
		if n.Address == hosts[0].Address {
			return HostResult{Outcome: "failed", Err: errors.New("connect: connection refused")}
		}
		time.Sleep(10 * time.Millisecond)
		if ctx.Err() != nil {
			return HostResult{Outcome: "failed", Err: ctx.Err()}
		}
		return HostResult{Outcome: "joined"}
	})
	if calls.Load() != int32(len(hosts)) {
		t.Errorf("fn ran on %d of %d hosts", calls.Load(), len(hosts))
	}
	for i, r := range results {
		if (r.Err != nil) != (i == 0) {
			t.Errorf("%s: %s, %v", r.Host, r.Outcome, r.Err)
		}
	}
}

// TestSummarize prints a line per host, sorted, with outcome or the tail of
// the error, and an error naming the failed hosts.
func TestSummarize(t *testing.T) {
	var out bytes.Buffer
	long := strings.Repeat("early line\n", 20) + "kubelet: exit status 1\n"
	err := summarize(reporter.New(&out, nil, true), "Workers", []HostResult{
		{Host: "10.0.0.3", Outcome: "joined as w3", Duration: 1234 * time.Millisecond},
		{Host: "10.0.0.1", Outcome: "failed", Duration: 2 * time.Second, Err: errors.New(long)},
		{Host: "10.0.0.2", Outcome: "already joined (node w2 Ready)", Duration: 15 * time.Millisecond},
		{Host: "10.0.0.4", Outcome: "failed", Duration: time.Second, Err: errors.New("connect: no route to host")},
	})
	got := out.String()
	lines := strings.Split(got, "\n")
	if lines[1] != "Workers:" ||
		!strings.HasPrefix(lines[2], "  10.0.0.1             FAILED after 2s: early line") ||
		!strings.Contains(got, "\n  10.0.0.2             already joined (node w2 Ready) in 20ms\n") ||
		!strings.Contains(got, "\n  10.0.0.3             joined as w3 in 1.23s\n") ||
		!strings.Contains(got, "\n  10.0.0.4             FAILED after 1s: connect: no route to host\n") {
		t.Errorf("summary:\n%s", got)
	}
	if n := strings.Count(got, "early line"); n != 11 || !strings.Contains(got, "\n      kubelet: exit status 1\n") {
		t.Errorf("a failure shows the last 12 lines of its error, indented; got %d early lines:\n%s", n, got)
	}
	want := "Workers failed on 2 of 4 hosts: 10.0.0.1, 10.0.0.4; fix them and run the same command again"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want it to start with %q", err, want)
	}

	out.Reset()
	if err := summarize(reporter.New(&out, nil, true), "Reset", []HostResult{{Host: "10.0.0.1", Outcome: "reset", Duration: time.Second}}); err != nil {
		t.Errorf("no host failed, but: %v", err)
	}
	if !strings.Contains(out.String(), "10.0.0.1             reset in 1s") {
		t.Errorf("summary:\n%s", out.String())
	}
}
