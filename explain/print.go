package explain

import (
	"fmt"
	"io"
	"strings"
	"time"

	"kforge.dev/kforge/messages"
)

// PrintMap writes the architecture for people: a section per part, its
// role wrapped, its facts aligned.
func PrintMap(w io.Writer, m *Map, p Printer) {
	fmt.Fprintln(w, m.Heading)
	for i, part := range m.Parts {
		fmt.Fprintf(w, "\n%d. %s\n", i+1, part.Title)
		for _, l := range wrap(part.Role, 76) {
			fmt.Fprintf(w, "   %s\n", l)
		}
		var rows [][]string
		for _, f := range part.Facts {
			rows = append(rows, []string{"• " + f.Label + ":", f.Value})
		}
		messages.Table(w, "   ", 2, rows)
	}
	fmt.Fprintf(w, "\n%s\n", p.T("explain.more", nil))
}

// PrintTrace writes the steps in order, each with its time and evidence.
func PrintTrace(w io.Writer, t *Trace, p Printer) {
	fmt.Fprintln(w, p.T("explain.trace.heading", map[string]string{"Kind": t.Kind, "Namespace": t.Namespace, "Name": t.Name}))
	for _, s := range t.Steps {
		mark := "✓"
		if !s.Done {
			mark = "…"
		}
		when := ""
		if !s.Time.IsZero() {
			when = "  [" + s.Time.UTC().Format(time.RFC3339) + "]"
		}
		fmt.Fprintf(w, "\n%s %d. %s%s\n", mark, s.N, s.Title, when)
		for _, e := range s.Evidence {
			fmt.Fprintf(w, "     - %s\n", e)
		}
	}
}

// wrap breaks text into lines of at most width runes, at spaces; text
// without spaces (Chinese) breaks at width runes.
func wrap(text string, width int) []string {
	var lines []string
	var line []rune
	for _, word := range strings.Fields(text) {
		r := []rune(word)
		for len(r) > width {
			if len(line) > 0 {
				lines, line = append(lines, string(line)), nil
			}
			lines, r = append(lines, string(r[:width])), r[width:]
		}
		if len(line) > 0 && len(line)+1+len(r) > width {
			lines, line = append(lines, string(line)), nil
		}
		if len(line) > 0 {
			line = append(line, ' ')
		}
		line = append(line, r...)
	}
	if len(line) > 0 {
		lines = append(lines, string(line))
	}
	return lines
}
