package artifacts

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Client fetches from a control plane's artifact server.
type Client struct {
	base  string
	token string
	http  *http.Client
	// Attempts and Backoff bound the tries of one request (3, 1 s).
	Attempts int
	Backoff  time.Duration
}

// NewClient returns a client of the server at base (https://host:port)
// that trusts only the cluster CA caPEM and sends token.
func NewClient(base string, caPEM []byte, token string) (*Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("artifact server: the cluster CA is not a PEM certificate")
	}
	t := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 8,
		ForceAttemptHTTP2:   true,
	}
	return &Client{base: base, token: token, http: &http.Client{Transport: t}, Attempts: 3, Backoff: time.Second}, nil
}

// Base is the server's address.
func (c *Client) Base() string { return c.base }

// Get returns the body at p, at most limit bytes.
func (c *Client) Get(ctx context.Context, p string, limit int64) ([]byte, error) {
	var out []byte
	err := c.retry(ctx, p, func(body io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(body, limit+1))
		if err != nil {
			return err
		}
		if int64(len(b)) > limit {
			return fmt.Errorf("more than %d bytes", limit)
		}
		out = b
		return nil
	})
	return out, err
}

// Fetch writes the body at p to dst (mode 0644 or the mode given), whole
// or not at all: the bytes go to dst.partial and are renamed only once
// their size is size and their sha256 is sum (both checked when not
// empty). It returns the bytes received.
func (c *Client) Fetch(ctx context.Context, p, dst string, mode os.FileMode, size int64, sum string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	tmp := dst + ".partial"
	var received int64
	err := c.retry(ctx, p, func(body io.Reader) error {
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), body)
		received += n
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if size > 0 && n != size {
			return &checkError{fmt.Errorf("%d bytes, the signed manifest says %d", n, size)}
		}
		if got := hex.EncodeToString(h.Sum(nil)); sum != "" && got != sum {
			return &checkError{fmt.Errorf("sha256 %s, the signed manifest says %s", got, sum)}
		}
		return nil
	})
	if err != nil {
		os.Remove(tmp)
		return received, err
	}
	return received, os.Rename(tmp, dst)
}

// checkError is content that arrived whole and is wrong: trying again
// would not help.
type checkError struct{ err error }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

// retry runs one GET of p and read on its body, up to Attempts times when
// the server cannot be reached or answers 5xx.
func (c *Client) retry(ctx context.Context, p string, read func(io.Reader) error) error {
	var last error
	for attempt := 0; attempt < max(1, c.Attempts); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.Backoff):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+p, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.http.Do(req)
		if err != nil {
			last = fmt.Errorf("GET %s%s: %w", c.base, p, err)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			last = fmt.Errorf("GET %s%s: %s", c.base, p, resp.Status)
			if resp.StatusCode >= 500 {
				continue
			}
			return last
		}
		err = read(resp.Body)
		resp.Body.Close()
		if err == nil {
			return nil
		}
		last = fmt.Errorf("GET %s%s: %w", c.base, p, err)
		var ce *checkError
		if errors.As(err, &ce) {
			return last
		}
	}
	return last
}
