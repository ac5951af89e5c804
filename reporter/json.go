package reporter

import (
	"encoding/json"
	"io"
	"strings"
	"time"
)

// The kinds of event of JSON mode.
const (
	EventPhaseStart = "phase-start"
	EventPhaseEnd   = "phase-end"
	EventPhaseSkip  = "phase-skip"
	EventInfo       = "info"
	EventSummary    = "summary"
)

// Event is one line of JSON mode's output.
type Event struct {
	Event string    `json:"event"`
	Time  time.Time `json:"time"` // RFC 3339 with nanoseconds, UTC
	// Command is the command a summary is about: init, join, reset, up.
	Command string `json:"command,omitempty"`
	Host    string `json:"host,omitempty"`
	// Phase is the phase's path, such as control-plane/apiserver.
	Phase string `json:"phase,omitempty"`
	// Reason says why a phase is skipped.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// DurationSeconds is set on phase-end and summary.
	DurationSeconds *float64 `json:"duration_seconds,omitempty"`
	// Success is set on summary.
	Success *bool  `json:"success,omitempty"`
	Error   string `json:"error,omitempty"`
	// Hosts are the results of a multi-host run, on summary.
	Hosts []HostEvent `json:"hosts,omitempty"`
}

// HostEvent is one host's result in a summary.
type HostEvent struct {
	Host            string  `json:"host"`
	Outcome         string  `json:"outcome"`
	DurationSeconds float64 `json:"duration_seconds"`
	Error           string  `json:"error,omitempty"`
}

// jsonOut is the state a JSON reporter shares with its ForHost reporters.
type jsonOut struct {
	enc      *json.Encoder
	command  string
	hosts    []HostResult
	finished bool
}

// NewJSON reports to out in JSON Lines: an event for each step's start,
// end or skip, an info event for each line of text, and a summary of
// command at the end (Finish). Progress bars are off; verbose details go
// to log (may be nil).
func NewJSON(out io.Writer, log io.Writer, command string) *Reporter {
	r := New(out, log, true)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	r.json = &jsonOut{enc: enc, command: command}
	return r
}

// Finish ends the report of a command that returned err. In JSON mode it
// writes the summary event, once; text mode has printed everything
// already (the error goes to stderr).
func (r *Reporter) Finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.json == nil || r.json.finished {
		return
	}
	r.json.finished = true
	ok := err == nil
	e := Event{Event: EventSummary, Command: r.json.command, Success: &ok,
		DurationSeconds: seconds(r.now().Sub(r.started)), Error: errString(err)}
	for _, h := range r.json.hosts {
		e.Hosts = append(e.Hosts, HostEvent{Host: h.Host, Outcome: h.Outcome, DurationSeconds: *seconds(h.Duration), Error: errString(h.Err)})
	}
	r.emit(e)
}

// emit writes one event; r.mu is held. The time is now's and the host
// r's unless e has them.
func (r *Reporter) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	e.Time = e.Time.UTC()
	if e.Host == "" {
		e.Host = r.host
	}
	r.json.enc.Encode(e)
}

// info writes an info event for each line of text that is not blank;
// r.mu is held.
func (r *Reporter) info(text string) {
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			r.emit(Event{Event: EventInfo, Message: l})
		}
	}
}

// Relay returns a writer for the output of a command run on host, and
// closing it writes a last unterminated line. In text mode each line is
// written with "[host] " in front. In JSON mode a line that is an event
// of a kforge run there in JSON mode is written again with its host set to
// host (its summary is left out: the host's result is in this run's
// summary); any other line becomes an info event of host.
func (r *Reporter) Relay(host string) io.WriteCloser {
	if r.json == nil {
		return &lineWriter{line: func(l string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.board != nil {
				r.board.relayed(r.out, r.log, host, l, r.now())
				return
			}
			io.WriteString(r.out, "["+host+"] "+l+"\n")
		}}
	}
	return &lineWriter{line: func(l string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		var e Event
		if json.Unmarshal([]byte(l), &e) != nil || e.Event == "" {
			if l = strings.TrimSpace(l); l != "" {
				r.emit(Event{Event: EventInfo, Host: host, Message: l})
			}
			return
		}
		if e.Event == EventSummary {
			return
		}
		e.Host = host
		r.emit(e)
	}}
}

func seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
