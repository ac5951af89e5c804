package host

import (
	"bytes"
	"fmt"
	"strings"
)

// TailLines is how many lines of output a CommandError keeps.
const TailLines = 15

// CommandError is a command that ran and failed. Its message gives the
// command as it can be pasted into a shell, the exit code and the tail of
// its output. It does not name the host: whoever reports the error does,
// once (a phase's error, the summary of a multi-host run).
type CommandError struct {
	Host   string
	Argv   []string
	Result Result
	// Err is set when the command could not be started or was ended
	// (cancelled context, lost connection) rather than exiting non-zero.
	Err error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "command `%s`", ShellQuote(e.Argv))
	if e.Err != nil {
		fmt.Fprintf(&b, " failed: %v", e.Err)
	} else {
		fmt.Fprintf(&b, " exited %d", e.Result.ExitCode)
	}
	if tail := Tail(e.Result.Stderr, e.Result.Stdout); tail != "" {
		b.WriteString("; output:\n")
		b.WriteString(tail)
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

// Tail returns the last TailLines lines of the first non-empty output.
func Tail(outputs ...[]byte) string {
	for _, o := range outputs {
		o = bytes.TrimRight(o, "\n\r\t ")
		if len(o) == 0 {
			continue
		}
		lines := strings.Split(string(o), "\n")
		if len(lines) > TailLines {
			lines = lines[len(lines)-TailLines:]
		}
		return "  " + strings.Join(lines, "\n  ")
	}
	return ""
}

// ShellQuote renders argv as one line a user can paste into a POSIX shell.
func ShellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = quoteWord(a)
	}
	return strings.Join(q, " ")
}

func quoteWord(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@+%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
