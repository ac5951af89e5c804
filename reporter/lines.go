package reporter

import (
	"bytes"
	"io"
	"sync"
)

// lineWriter calls line for each complete line written to it, without
// its newline; it is safe for concurrent use (a command's stdout and
// stderr).
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		l := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.line(l)
	}
}

// Close writes a last line that has no newline.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
	return nil
}

// prefixer writes prefix in front of every line; its caller serialises
// writes.
type prefixer struct {
	prefix string
	w      io.Writer
	start  bool
}

func (p *prefixer) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if p.start {
			io.WriteString(p.w, p.prefix)
			p.start = false
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.w.Write(b)
			break
		}
		p.w.Write(b[:i+1])
		p.start = true
		b = b[i+1:]
	}
	return n, nil
}

// writerFunc is an io.Writer that hands each write to a function.
type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) {
	f(b)
	return len(b), nil
}
