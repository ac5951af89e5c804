package reporter

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// board is, on a terminal, one line per host of a parallel run, redrawn in
// place: the host, the phase it is in (after the last one it finished),
// how many phases it finished, the bytes it fetched and the time since it
// started. Lines the hosts print that a user must read (warnings, "  !")
// are printed above it; the rest goes to the verbose log.
type board struct {
	hosts []string
	state map[string]*hostLine
	drawn int // lines of the board on the screen
	stop  chan struct{}
}

type hostLine struct {
	last    string // the last phase finished
	done    int
	failed  bool
	bytes   string
	started time.Time
	ended   time.Duration
	finish  bool
}

var (
	// stepLine is a finished step of kforge's plain output.
	stepLine = regexp.MustCompile(`^\[(ok|FAILED)\] (\S+) `)
	// fetchedLine is what a worker prints once it fetched its artifacts.
	fetchedLine = regexp.MustCompile(`^fetched ([0-9.]+ [KMG]?i?B) `)
)

// Board shows the hosts' progress as lines redrawn in place while the
// returned function has not been called; the function draws the final
// state, leaves it on the screen and takes the board away. Off a terminal
// (plain or JSON), Board does nothing: each host's lines are relayed as
// they come.
func (r *Reporter) Board(hosts []string) (done func()) {
	if !r.fancy || len(hosts) == 0 {
		return func() {}
	}
	r.mu.Lock()
	b := &board{hosts: hosts, state: map[string]*hostLine{}, stop: make(chan struct{})}
	now := r.now()
	for _, h := range hosts {
		b.state[h] = &hostLine{started: now}
	}
	r.board = b
	b.draw(r.out, now)
	r.mu.Unlock()
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				r.mu.Lock()
				b.draw(r.out, r.now())
				r.mu.Unlock()
			}
		}
	}()
	return func() {
		close(b.stop)
		<-ticked
		r.mu.Lock()
		defer r.mu.Unlock()
		b.draw(r.out, r.now())
		r.board = nil
	}
}

// FinishOn marks host's line finished: its clock stops. r.mu is not held.
func (r *Reporter) FinishOn(host string, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.board == nil {
		return
	}
	if s := r.board.state[host]; s != nil && !s.finish {
		s.finish, s.ended = true, r.now().Sub(s.started)
		s.failed = s.failed || failed
		r.board.draw(r.out, r.now())
	}
}

// relayed takes one line a host printed: a finished phase or the bytes
// fetched update its line, a warning is printed above the board, the rest
// goes to the log. r.mu is held.
func (b *board) relayed(out, log io.Writer, host, line string, now time.Time) {
	s := b.state[host]
	if s == nil {
		fmt.Fprintf(out, "[%s] %s\n", host, line)
		return
	}
	fmt.Fprintf(log, "[%s] %s\n", host, line)
	switch m := stepLine.FindStringSubmatch(line); {
	case m != nil:
		s.last = m[2]
		if m[1] == "FAILED" {
			s.failed = true
		} else {
			s.done++
		}
	case fetchedLine.MatchString(line):
		s.bytes = fetchedLine.FindStringSubmatch(line)[1]
	case strings.HasPrefix(strings.TrimSpace(line), "!"):
		b.above(out, fmt.Sprintf("[%s] %s", host, line), now)
		return
	}
	b.draw(out, now)
}

// above prints line above the board and draws the board again under it.
func (b *board) above(out io.Writer, line string, now time.Time) {
	b.clear(out)
	fmt.Fprintln(out, line)
	b.draw(out, now)
}

func (b *board) clear(out io.Writer) {
	if b.drawn > 0 {
		fmt.Fprintf(out, "\033[%dA\r\033[J", b.drawn)
		b.drawn = 0
	}
}

func (b *board) draw(out io.Writer, now time.Time) {
	b.clear(out)
	width := 0
	for _, h := range b.hosts {
		width = max(width, len(h))
	}
	for _, h := range b.hosts {
		s := b.state[h]
		elapsed := now.Sub(s.started)
		status := "starting"
		switch {
		case s.finish && s.failed:
			status = "✗ failed after " + s.last
		case s.finish:
			status = "✓ done"
		case s.failed:
			status = "✗ " + s.last + " failed"
		case s.last != "":
			status = "after " + s.last
		}
		if s.finish {
			elapsed = s.ended
		}
		bytes := ""
		if s.bytes != "" {
			bytes = "  fetched " + s.bytes
		}
		fmt.Fprintf(out, "  %-*s  %-28s %2d phases%s  %s\n", width, h, status, s.done, bytes, Duration(elapsed.Round(100*time.Millisecond)))
	}
	b.drawn = len(b.hosts)
}
