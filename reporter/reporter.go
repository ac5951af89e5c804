// Package reporter is kforge's one output channel for people: a line per
// phase with a tick or a cross and its duration, a total at the end, and
// details in a verbose log. On a terminal the running phase is shown and
// then replaced by its result; otherwise (CI, pipes) output is plain lines.
package reporter

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Reporter prints progress.
type Reporter struct {
	mu      sync.Mutex
	out     io.Writer
	log     io.Writer
	fancy   bool
	started time.Time
	now     func() time.Time
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
	return &Reporter{out: out, log: log, fancy: fancy, started: time.Now(), now: time.Now}
}

// Discard is a Reporter that prints nothing, for tests and library use.
func Discard() *Reporter { return New(io.Discard, nil, true) }

// Terminal tells whether output goes to a terminal (bars and redrawn
// lines) rather than plain lines.
func (r *Reporter) Terminal() bool { return r.fancy }

// Writer is where a step may print longer output (a join command, a plan).
func (r *Reporter) Writer() io.Writer { return r.out }

// Log is the verbose log.
func (r *Reporter) Log() io.Writer { return r.log }

// Logf writes one line to the verbose log.
func (r *Reporter) Logf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.log, format+"\n", a...)
}

// Infof prints one line for the user.
func (r *Reporter) Infof(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, format+"\n", a...)
}

// Step starts a step called title and returns the function that ends it
// with its error (nil for success).
func (r *Reporter) Step(title string) func(error) {
	start := r.now()
	r.mu.Lock()
	if r.fancy {
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
		if r.fancy {
			fmt.Fprintf(r.out, "\r\033[K  %s %s %s\n", mark, title, Duration(d))
		} else {
			fmt.Fprintf(r.out, "[%s] %s %s\n", word, title, Duration(d))
		}
		fmt.Fprintf(r.log, "end %s after %s: %v\n", title, d, err)
	}
}

// Total prints the time since the reporter was made.
func (r *Reporter) Total(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, "%s in %s\n", what, Duration(r.now().Sub(r.started)))
}

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
// (nothing in plain mode) and returns the function that counts finished
// units; it is safe for concurrent use. The bar ends when all are done.
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
