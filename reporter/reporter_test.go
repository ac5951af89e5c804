package reporter

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPlainStepsAndTotal(t *testing.T) {
	var out, log bytes.Buffer
	r := New(&out, &log, false) // a bytes.Buffer is never a terminal
	clock := time.Unix(0, 0)
	r.now = func() time.Time { return clock }
	r.started = clock
	done := r.Step("certs")
	clock = clock.Add(1240 * time.Millisecond)
	done(nil)
	done = r.Step("etcd")
	clock = clock.Add(60 * time.Millisecond)
	done(errors.New("boom"))
	r.Total("init finished")
	want := "[ok] certs 1.24s\n[FAILED] etcd 60ms\ninit finished in 1.30s\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !strings.Contains(log.String(), "end etcd after 60ms: boom") {
		t.Fatalf("verbose log lacks the failure: %s", log.String())
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		85 * time.Millisecond:   "85ms",
		1240 * time.Millisecond: "1.24s",
		123 * time.Second:       "2m03s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %s, want %s", d, got, want)
		}
	}
}
