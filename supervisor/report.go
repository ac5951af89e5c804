package supervisor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"text/tabwriter"
	"time"
)

// States a service can be in.
const (
	// StateWaiting: a service it is after is not running yet.
	StateWaiting = "waiting"
	// StateStarting: started, its ready check has not passed yet.
	StateStarting = "starting"
	// StateRunning: started and ready.
	StateRunning = "running"
	// StateBackoff: it exited (or could not start) and will be restarted.
	StateBackoff = "backoff"
	// StateStopping: SIGTERM sent, waiting for the group to end.
	StateStopping = "stopping"
	// StateStopped: stopped by the supervisor.
	StateStopped = "stopped"
	// StateInvalid: its service file cannot be used; Error says why.
	StateInvalid = "invalid"
)

// Report is what STATE/status.json holds: the supervisor and each service.
type Report struct {
	// Running is whether a supervisor holds the lock now; it is worked out
	// when the report is read, and the rest describes its last state when
	// it is not running.
	Running   bool      `json:"running"`
	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	// LoadedAt is when the supervisor last began reading services/; it is
	// written once that reload has been applied.
	LoadedAt time.Time `json:"loadedAt,omitzero"`
	// Error is set when services/ could not be read at all.
	Error    string          `json:"error,omitempty"`
	Services []ServiceStatus `json:"services"`
}

// ServiceStatus is one service's state.
type ServiceStatus struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
	// PID leads the service's process group while it runs.
	PID int `json:"pid,omitempty"`
	// StartTicks is the process's start time from /proc, so that a later
	// supervisor never mistakes a reused pid for the service.
	StartTicks uint64 `json:"startTicks,omitempty"`
	// Restarts counts restarts after an exit or a failed start or ready
	// check; restarts for a changed service file are not counted.
	Restarts   int       `json:"restarts"`
	LastExit   string    `json:"lastExit,omitempty"`
	LastExitAt time.Time `json:"lastExitAt,omitzero"`
	WaitingFor []string  `json:"waitingFor,omitempty"`
	Error      string    `json:"error,omitempty"`
	Log        string    `json:"log,omitempty"`
}

// Service returns the status of the service called name.
func (r Report) Service(name string) (ServiceStatus, bool) {
	for _, s := range r.Services {
		if s.Name == name {
			return s, true
		}
	}
	return ServiceStatus{}, false
}

func statusFile(stateDir string) string { return filepath.Join(stateDir, "status.json") }

// ReadReport reads stateDir's status file and checks whether its
// supervisor is running. No status file is an empty report; so is one left
// by an earlier supervisor while a new one starts up.
func ReadReport(stateDir string) (Report, error) {
	r, err := readStatusFile(stateDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r, fmt.Errorf("%s: %w", statusFile(stateDir), err)
	}
	pid, running, err := probe(stateDir)
	if err != nil {
		return r, err
	}
	if running && r.PID != pid {
		// The file is a predecessor's: this supervisor has not loaded its
		// services yet.
		r = Report{}
	}
	r.Running = running
	if running {
		r.PID = pid
	}
	return r, nil
}

// Write prints r for a person: one line for the supervisor, then a table
// of services and the errors, if any.
func (r Report) Write(w io.Writer) error {
	ts := func(t time.Time) string { return t.Local().Format(time.DateTime) }
	switch {
	case r.Running:
		fmt.Fprintf(w, "supervisor: running, pid %d, since %s\n", r.PID, ts(r.StartedAt))
	case len(r.Services) > 0:
		fmt.Fprintln(w, "supervisor: not running; services as it last saw them:")
	default:
		fmt.Fprintln(w, "supervisor: not running")
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
	if len(r.Services) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tRESTARTS\tLAST EXIT")
	for _, s := range r.Services {
		pid, exit := "-", "-"
		if s.PID > 0 {
			pid = fmt.Sprint(s.PID)
		}
		if s.LastExit != "" {
			exit = fmt.Sprintf("%s at %s", s.LastExit, ts(s.LastExitAt))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Name, s.State, pid, s.Restarts, exit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Services {
		if len(s.WaitingFor) > 0 {
			fmt.Fprintf(w, "%s: waiting for %v\n", s.Name, s.WaitingFor)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", s.Name, s.Error)
		}
	}
	return nil
}
