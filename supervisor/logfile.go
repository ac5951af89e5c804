package supervisor

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// DefaultMaxLogSize is the size at which NAME.log is renamed to NAME.log.1
// (replacing the previous one) and a new NAME.log begun.
const DefaultMaxLogSize = 10 << 20

// logFile is a service's log: appended to, rotated by size. It is shared
// by every run of the service and by the copiers of their output, and
// reopens itself on the next write after close.
type logFile struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil && l.max > 0 && l.size > 0 && l.size+int64(len(p)) > l.max {
		l.f.Close()
		l.f = nil
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return 0, err
		}
	}
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return 0, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return 0, err
		}
		l.f, l.size = f, st.Size()
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// notef writes one line of the supervisor's own about the service.
func (l *logFile) notef(format string, args ...any) {
	fmt.Fprintf(l, "%s kforge supervisor: %s\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
