// Package reporter is kforge's one output channel: a line per phase with a
// tick or a cross and its duration, a total at the end, and details in a
// verbose log. On a terminal the running phase is shown and then replaced
// by its result; otherwise (CI, pipes) output is plain lines. In JSON mode
// (NewJSON) the same calls write one JSON object per line instead, for
// programs.
package reporter

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Reporter prints progress.
type Reporter struct {
	// mu lets one line out at a time; a reporter shares it with those
	// ForHost makes from it.
	mu    *sync.Mutex
	out   io.Writer
	log   io.Writer
	fancy bool
	// json is set in JSON mode (NewJSON).
	json *jsonOut
	// host is what a ForHost reporter's lines are about.
	host string
	// board, while set, shows the hosts of a parallel run (Board).
	board   *board
	started time.Time
	now     func() time.Time
}

// HostResult is what happened on one host of a multi-host run.
type HostResult struct {
	Host     string
	Outcome  string
	Duration time.Duration
	Err      error
}

// New reports to out. Terminal mode is used when out is a terminal and
// plain is false. Verbose details go to log (may be nil).
func New(out io.Writer, log io.Writer, plain bool) *Reporter {
	fancy := false
	if f, ok := out.(*os.File); ok && !plain {
		fancy = term.IsTerminal(int(f.Fd()))
	}
	if log == nil {
		log = io.Discard
	}
	return &Reporter{mu: &sync.Mutex{}, out: out, log: log, fancy: fancy, started: time.Now(), now: time.Now}
}

// Discard is a Reporter that prints nothing, for tests and library use.
func Discard() *Reporter { return New(io.Discard, nil, true) }

// ForHost returns a reporter for the work on one host of a parallel run:
// its lines have "[host] " in front, or in JSON mode its events name host.
// It writes through r, one line at a time.
func (r *Reporter) ForHost(host string) *Reporter {
	c := *r
	c.host, c.fancy = host, false
	c.log = &prefixer{prefix: "[" + host + "] ", w: r.log, start: true}
	if r.json == nil {
		c.out = &prefixer{prefix: "[" + host + "] ", w: r.out, start: true}
	}
	return &c
}

// Format is "json" in JSON mode and "text" otherwise: the value of
// kforge's --output that makes a kforge run elsewhere write as r does.
func (r *Reporter) Format() string {
	if r.json != nil {
		return "json"
	}
	return "text"
}

// Terminal tells whether output goes to a terminal (bars and redrawn
// lines) rather than plain lines.
func (r *Reporter) Terminal() bool { return r.fancy }

// Writer is where a step may print longer output (a join command, a plan,
// a question). In JSON mode each line written becomes an info event, the
// last one of a write even without a newline.
func (r *Reporter) Writer() io.Writer {
	if r.json != nil {
		return writerFunc(func(b []byte) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.info(string(b))
		})
	}
	return writerFunc(func(b []byte) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.out.Write(b)
	})
}

// Log is the verbose log.
func (r *Reporter) Log() io.Writer { return r.log }

// Logf writes one line to the verbose log.
func (r *Reporter) Logf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.log, format+"\n", a...)
}

// Infof prints one line for the user; in JSON mode an info event for each
// of its lines that is not blank.
func (r *Reporter) Infof(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.json != nil {
		r.info(fmt.Sprintf(format, a...))
		return
	}
	if r.board != nil {
		r.board.above(r.out, strings.TrimRight(fmt.Sprintf(format, a...), "\n"), r.now())
		return
	}
	fmt.Fprintf(r.out, format+"\n", a...)
}

// Step starts a step called title and returns the function that ends it
// with its error (nil for success).
func (r *Reporter) Step(title string) func(error) { return r.StepOn("", title) }

// StepOn is Step for a step that runs on host ("" for a ForHost
// reporter's host). Only JSON mode shows the host.
func (r *Reporter) StepOn(host, title string) func(error) {
	start := r.now()
	r.mu.Lock()
	if r.json != nil {
		r.emit(Event{Event: EventPhaseStart, Time: start, Host: host, Phase: title})
	} else if r.fancy {
		fmt.Fprintf(r.out, "  • %s ...", title)
	}
	fmt.Fprintf(r.log, "start %s\n", title)
	r.mu.Unlock()
	return func(err error) {
		d := r.now().Sub(start)
		r.mu.Lock()
		defer r.mu.Unlock()
		mark, word := "✓", "ok"
		if err != nil {
			mark, word = "✗", "FAILED"
		}
		switch {
		case r.json != nil:
			r.emit(Event{Event: EventPhaseEnd, Host: host, Phase: title, DurationSeconds: seconds(d), Error: errString(err)})
		case r.fancy:
			fmt.Fprintf(r.out, "\r\033[K  %s %s %s\n", mark, title, Duration(d))
		default:
			fmt.Fprintf(r.out, "[%s] %s %s\n", word, title, Duration(d))
		}
		fmt.Fprintf(r.log, "end %s after %s: %v\n", title, d, err)
	}
}

// SkipOn reports that the step title on host does not run, and why.
func (r *Reporter) SkipOn(host, title, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.json != nil {
		r.emit(Event{Event: EventPhaseSkip, Host: host, Phase: title, Reason: reason})
	} else {
		fmt.Fprintf(r.out, "[skip] %s (%s)\n", title, reason)
	}
	fmt.Fprintf(r.log, "skip %s: %s\n", title, reason)
}

// Total prints the time since the reporter was made. JSON mode prints
// nothing: the summary event (Finish) has the total.
func (r *Reporter) Total(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.json != nil {
		return
	}
	fmt.Fprintf(r.out, "%s in %s\n", what, Duration(r.now().Sub(r.started)))
}

// Hosts prints the result of each host of a multi-host run under the
// heading what; in JSON mode they go into the summary event.
func (r *Reporter) Hosts(what string, results []HostResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.json != nil {
		r.json.hosts = append(r.json.hosts, results...)
		return
	}
	fmt.Fprintf(r.out, "\n%s:\n", what)
	for _, h := range results {
		d := h.Duration.Round(10 * time.Millisecond)
		if h.Err != nil {
			fmt.Fprintf(r.out, "  %-20s FAILED after %s: %s\n", h.Host, d, indentTail(h.Err.Error()))
			continue
		}
		fmt.Fprintf(r.out, "  %-20s %s in %s\n", h.Host, h.Outcome, d)
	}
}

// indentTail keeps the last lines of a (long) error and indents them
// under its host.
func indentTail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 12 {
		lines = lines[len(lines)-12:]
	}
	return strings.Join(lines, "\n      ")
}

// MiB formats a byte count for people: 152.3 MiB.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Duration formats d for people: 85ms, 1.24s, 2m03s.
func Duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

// Progress shows a bar of total units of work called what on a terminal
// (nothing in plain or JSON mode) and returns the function that counts
// finished units; it is safe for concurrent use. The bar ends when all are
// done.
func (r *Reporter) Progress(what string, total int) func() {
	if !r.fancy || total < 1 {
		return func() {}
	}
	r.mu.Lock()
	fmt.Fprint(r.out, "\r\033[K")
	r.mu.Unlock()
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(r.out),
		progressbar.OptionSetDescription("  "+what),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	)
	var mu sync.Mutex
	return func() {
		mu.Lock()
		defer mu.Unlock()
		bar.Add(1)
	}
}
