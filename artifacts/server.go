package artifacts

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// File is one file the server offers, at its path on the control plane.
type File struct {
	Path string
	// Size, when not 0, is checked when the server starts: a missing or
	// changed file fails the start, so that kforge falls back to sending
	// it before any worker asks.
	Size int64
}

// Server answers GET and HEAD for a fixed set of files to clients that
// present the token.
type Server struct {
	token string
	files map[string]File
	log   io.Writer

	mu   sync.Mutex
	sent map[string]int64 // bytes sent, by client address
}

// NewServer checks that every file is there (with its size, when given)
// and returns a server for them; log, when not nil, gets a line per
// request.
func NewServer(token string, files map[string]File, log io.Writer) (*Server, error) {
	if len(token) < 16 {
		return nil, errors.New("artifact server: a token of at least 16 characters is needed")
	}
	var missing []string
	for p, f := range files {
		fi, err := os.Stat(f.Path)
		switch {
		case err != nil:
			missing = append(missing, fmt.Sprintf("%s (%v)", p, err))
		case !fi.Mode().IsRegular():
			missing = append(missing, fmt.Sprintf("%s (%s is not a regular file)", p, f.Path))
		case f.Size != 0 && fi.Size() != f.Size:
			missing = append(missing, fmt.Sprintf("%s (%s has %d bytes, the manifest says %d)", p, f.Path, fi.Size(), f.Size))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("artifact server: %d file(s) cannot be served: %s", len(missing), strings.Join(missing, "; "))
	}
	if log == nil {
		log = io.Discard
	}
	return &Server{token: token, files: files, log: log, sent: map[string]int64{}}, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
		fmt.Fprintf(s.log, "refused %s from %s: no valid token\n", r.URL.Path, r.RemoteAddr)
		http.Error(w, "a valid bootstrap token is needed", http.StatusUnauthorized)
		return
	}
	f, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	file, err := os.Open(f.Path)
	if err != nil {
		http.Error(w, "cannot open the file", http.StatusInternalServerError)
		fmt.Fprintf(s.log, "%s: %v\n", r.URL.Path, err)
		return
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		http.Error(w, "cannot read the file", http.StatusInternalServerError)
		return
	}
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", fi.ModTime(), file)
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.mu.Lock()
	s.sent[host] += cw.n
	s.mu.Unlock()
	fmt.Fprintf(s.log, "served %s to %s: %d bytes\n", r.URL.Path, host, cw.n)
}

// Sent returns the bytes sent so far, by client address.
func (s *Server) Sent() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.sent))
	for k, v := range s.sent {
		out[k] = v
	}
	return out
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Serve serves s over TLS with the certificate and key files on l until
// ctx ends, then closes the connections it has open.
func Serve(ctx context.Context, l net.Listener, s *Server, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("artifact server: certificate %s: %w", certFile, err)
	}
	hs := &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		_ = hs.Close()
	}()
	err = hs.ServeTLS(l, "", "")
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
