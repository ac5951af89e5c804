package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"kforge.dev/kforge/host"
)

// Host is a machine reached over one SSH connection.
type Host struct {
	cfg    Config
	client *ssh.Client
	jump   *Host // a jump host this Host dialled itself and closes with it
	dead   chan struct{}

	sftpMu sync.Mutex
	sftp   *sftp.Client

	sudoMu sync.Mutex
	sudo   sudoMode

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool // set by Close, before dead is closed

	// transfers counts uploads that sent data (not skipped ones).
	transfers atomic.Int64
}

var _ host.Host = (*Host)(nil)

// DialError is a connection or login that failed. Its message names the
// host and says what to check.
type DialError struct {
	Host string // user@address:port
	Err  error
	Hint string
}

func (e *DialError) Error() string {
	s := fmt.Sprintf("ssh %s: %v", e.Host, e.Err)
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *DialError) Unwrap() error { return e.Err }

// Dial connects to cfg's host (through cfg.Jump when set), verifies its host
// key and logs in. Nothing is retried: a refused login or a changed host key
// is returned at once.
func Dial(ctx context.Context, cfg Config) (*Host, error) {
	var jump *Host
	if cfg.Jump != nil {
		j, err := Dial(ctx, *cfg.Jump)
		if err != nil {
			return nil, fmt.Errorf("jump host for %s: %w", cfg.name(), err)
		}
		jump = j
	}
	h, err := dialVia(ctx, cfg, jump)
	if err != nil {
		if jump != nil {
			_ = jump.Close()
		}
		return nil, err
	}
	h.jump = jump
	return h, nil
}

// dialVia connects to cfg's host directly, or through jump's connection
// when jump is not nil. It does not dial cfg.Jump itself.
func dialVia(ctx context.Context, cfg Config, jump *Host) (*Host, error) {
	fail := func(err error, hint string) (*Host, error) {
		return nil, &DialError{Host: cfg.Key(), Err: err, Hint: hint}
	}
	if cfg.Address == "" {
		return fail(errors.New("no address"), "")
	}
	khPath, err := cfg.knownHostsPath()
	if err != nil {
		return fail(err, "set the known_hosts path")
	}
	hk := &hostKeys{path: khPath, accept: cfg.AcceptNewHostKeys}
	a, err := authFor(cfg)
	if err != nil {
		return fail(err, "")
	}
	defer a.close()

	hostport := cfg.hostPort()
	timeout := cfg.dialTimeout()
	cc := &ssh.ClientConfig{
		User:              cfg.user(),
		Auth:              a.methods,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(hostport),
		Timeout:           timeout,
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var conn net.Conn
	if jump == nil {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", hostport)
	} else {
		conn, err = jump.client.DialContext(dctx, "tcp", hostport)
	}
	if err == nil {
		// Nothing below takes a context: closing the connection ends a
		// handshake or login that outlives the timeout.
		stop := context.AfterFunc(dctx, func() { _ = conn.Close() })
		var (
			c     ssh.Conn
			chans <-chan ssh.NewChannel
			reqs  <-chan *ssh.Request
		)
		c, chans, reqs, err = ssh.NewClientConn(conn, hostport, cc)
		if !stop() {
			if err == nil {
				_ = c.Close()
			}
			err = dctx.Err()
		} else if err == nil {
			h := &Host{cfg: cfg, client: ssh.NewClient(c, chans, reqs), dead: make(chan struct{})}
			go func() {
				_ = h.client.Wait()
				close(h.dead)
			}()
			return h, nil
		} else {
			_ = conn.Close()
		}
	}
	return fail(explain(ctx, cfg, jump, a, err))
}

// explain turns a dial error into the error to show and a hint.
func explain(ctx context.Context, cfg Config, jump *Host, a *auth, err error) (error, string) {
	var changed *HostKeyChangedError
	var unknown *UnknownHostKeyError
	var openErr *ssh.OpenChannelError
	var dnsErr *net.DNSError
	var netErr net.Error
	port := cfg.port()
	switch {
	case errors.As(err, &changed):
		return changed, ""
	case errors.As(err, &unknown):
		return unknown, ""
	case ctx.Err() != nil:
		return ctx.Err(), ""
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("no answer within %s", cfg.dialTimeout()),
			fmt.Sprintf("check the address, that sshd listens on port %d and that no firewall drops the connection", port)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused"),
			fmt.Sprintf("is sshd running on %s and listening on port %d?", cfg.Address, port)
	case errors.As(err, &dnsErr):
		return err, "check the host name"
	case errors.As(err, &openErr):
		return fmt.Errorf("jump host %s could not connect: %v", jump.Name(), openErr),
			"check that the jump host can reach the address and allows forwarding (AllowTcpForwarding)"
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("login as %s refused (offered %s)", cfg.user(), strings.Join(a.offered, ", ")),
			"check the user name, the private key (and that its public key is in the user's authorized_keys), its passphrase, or the password"
	case errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "EOF"):
		return err, "sshd closed the connection: check its log (MaxStartups, AllowUsers, DenyUsers)"
	}
	return err, ""
}

// Name is the address, with the port when it is not 22.
func (h *Host) Name() string { return h.cfg.name() }

// Config returns the configuration the Host was dialled with.
func (h *Host) Config() Config { return h.cfg }

// Client returns the underlying SSH client.
func (h *Host) Client() *ssh.Client { return h.client }

// alive reports whether the connection is still up. A Host is dead as soon
// as Close is called, not only once the connection's reader has noticed.
func (h *Host) alive() bool {
	if h.closed.Load() {
		return false
	}
	select {
	case <-h.dead:
		return false
	default:
		return true
	}
}

// Close closes the SFTP client, the connection and a jump host dialled for
// it. Closing twice is harmless.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		h.sftpMu.Lock()
		if h.sftp != nil {
			_ = h.sftp.Close()
			h.sftp = nil
		}
		h.sftpMu.Unlock()
		h.closeErr = h.client.Close()
		if errors.Is(h.closeErr, net.ErrClosed) {
			h.closeErr = nil
		}
		if h.jump != nil {
			if err := h.jump.Close(); err != nil && h.closeErr == nil {
				h.closeErr = err
			}
		}
	})
	return h.closeErr
}

// sftpClient returns the Host's SFTP client, opening it on first use.
func (h *Host) sftpClient() (*sftp.Client, error) {
	h.sftpMu.Lock()
	defer h.sftpMu.Unlock()
	if h.sftp != nil {
		return h.sftp, nil
	}
	c, err := sftp.NewClient(h.client, sftp.UseConcurrentWrites(true))
	if err != nil {
		return nil, fmt.Errorf("starting sftp: %w", err)
	}
	h.sftp = c
	return c, nil
}

// DialContext opens a TCP connection from the host to addr, forwarded
// over the SSH connection (the server's direct-tcpip channel).
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := h.client.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("host %s: connect to %s over SSH: %w", h.Name(), addr, err)
	}
	return c, nil
}
