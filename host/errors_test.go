package host

import (
	"errors"
	"strings"
	"testing"
)

func TestShellQuote(t *testing.T) {
	got := ShellQuote([]string{"kubectl", "get", "pods", "-o", "jsonpath={.items[*].metadata.name}", "it's", ""})
	want := `kubectl get pods -o 'jsonpath={.items[*].metadata.name}' 'it'"'"'s' ''`
	if got != want {
		t.Fatalf("ShellQuote = %s, want %s", got, want)
	}
}

func TestCommandErrorTail(t *testing.T) {
	var lines []string
	for i := 0; i < 40; i++ {
		lines = append(lines, "line"+string(rune('a'+i%26)))
	}
	e := &CommandError{Host: "10.0.0.5", Argv: []string{"crictl", "ps"}, Result: Result{ExitCode: 2, Stderr: []byte(strings.Join(lines, "\n"))}}
	msg := e.Error()
	if !strings.HasPrefix(msg, "command `crictl ps` exited 2; output:") {
		t.Fatalf("message head: %s", msg)
	}
	if n := strings.Count(msg, "\n"); n != TailLines {
		t.Fatalf("kept %d lines, want %d", n, TailLines)
	}
	wrapped := &CommandError{Host: "h", Argv: []string{"x"}, Err: errors.New("connection lost")}
	if !strings.Contains(wrapped.Error(), "failed: connection lost") || !errors.Is(wrapped, wrapped.Err) {
		t.Fatalf("start failure: %s", wrapped.Error())
	}
}
