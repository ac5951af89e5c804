package phases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// LockWait is how long a run waits for another run's lock on a host: long
// enough for the lock of a run just killed to be released (its holder sees
// its input end), short enough to refuse a run that is still going.
const LockWait = 3 * time.Second

// lockScript holds layout.RunLock with flock while its input stays open:
// it prints "locked" once it holds it, and the holder's pid and command
// (from $2) are in the file; when another run holds it past the wait, it
// prints that run's line and exits 75. A host without flock runs unlocked.
const lockScript = `command -v flock >/dev/null 2>&1 || { echo locked; exec cat >/dev/null; }
exec 9<>"$1"
if ! flock -w "$3" 9; then cat "$1"; exit 75; fi
printf '%s\n' "$2" >"$1"
echo locked
exec cat >/dev/null`

// lockHost takes kforge's run lock on the host for one phase list. It
// returns the function that releases it. A host that records commands
// instead of running them (a dry run, a fake) runs unlocked.
func (d *Data) lockHost(ctx context.Context) (func(), error) {
	in, keep := io.Pipe()
	got := make(chan struct{})
	var once sync.Once
	out := &lockWatcher{saw: func() { once.Do(func() { close(got) }) }}
	who := fmt.Sprintf("pid %d on %s: kforge %s, since %s", os.Getpid(), hostname(), d.Command, time.Now().UTC().Format(time.RFC3339))
	done := make(chan error, 1)
	go func() {
		_, err := d.Host.Run(ctx, host.Cmd{
			Argv:  []string{"sh", "-c", lockScript, "kforge", layout.RunLock, who, fmt.Sprint(int(LockWait.Seconds()))},
			Stdin: in, Sudo: true, Stdout: out,
		})
		done <- err
	}()
	select {
	case <-got:
		return func() {
			keep.Close()
			<-done
		}, nil
	case err := <-done:
		keep.Close()
		var ce *host.CommandError
		switch {
		case err == nil:
			// The command did not run: nothing to hold.
			return func() {}, nil
		case errors.As(err, &ce) && ce.Result.ExitCode == 75:
			holder := strings.TrimSpace(string(ce.Result.Stdout))
			if holder == "" {
				holder = "its pid is not recorded"
			}
			return nil, fmt.Errorf("another kforge run holds %s's lock (%s; %s): wait for it to end, or stop it, then run this again", d.Host.Name(), layout.RunLock, holder)
		default:
			return nil, fmt.Errorf("take the run lock %s: %w", layout.RunLock, err)
		}
	}
}

// lockWatcher sees "locked" in the lock command's output.
type lockWatcher struct {
	mu  sync.Mutex
	buf bytes.Buffer
	saw func()
}

func (w *lockWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte("locked\n")) {
		w.saw()
	}
	return len(p), nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "?"
	}
	return h
}
