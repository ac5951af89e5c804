package ssh

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Config says how to reach and log in to one host.
type Config struct {
	// Address is the host name or IP address.
	Address string
	// Port is sshd's port; 0 means 22.
	Port int
	// User is the login user; "" means root.
	User string

	// KeyPaths are private key files to offer. When empty, and neither an
	// agent nor a password is available, ~/.ssh/id_ed25519, id_ecdsa and
	// id_rsa are tried if they exist.
	KeyPaths []string
	// Passphrase is asked for the passphrase of an encrypted key in
	// KeyPaths. Without it an encrypted key is an error.
	Passphrase func(keyPath string) ([]byte, error)
	// AgentSocket is the ssh-agent socket to use; "" means $SSH_AUTH_SOCK.
	AgentSocket string
	// NoAgent ignores $SSH_AUTH_SOCK.
	NoAgent bool
	// Password enables password (and keyboard-interactive) authentication.
	Password string

	// KnownHostsPath is the known_hosts file; "" means ~/.ssh/known_hosts.
	KnownHostsPath string
	// AcceptNewHostKeys adds the key of a host missing from known_hosts to
	// it (trust on first use). A changed key is refused regardless.
	AcceptNewHostKeys bool

	// SudoPassword is given to sudo when the user is not root and may not
	// sudo without a password.
	SudoPassword string

	// Jump is a host to connect through (ssh -J); the connection to Address
	// is a direct-tcpip channel opened by the jump host's sshd.
	Jump *Config

	// DialTimeout bounds the TCP connect plus the SSH handshake and login;
	// 0 means 15 seconds.
	DialTimeout time.Duration
	// Progress, when set, shows a progress bar for uploads over 1 MiB.
	Progress io.Writer
}

const (
	defaultPort        = 22
	defaultUser        = "root"
	defaultDialTimeout = 15 * time.Second
)

func (c Config) port() int {
	if c.Port == 0 {
		return defaultPort
	}
	return c.Port
}

func (c Config) user() string {
	if c.User == "" {
		return defaultUser
	}
	return c.User
}

func (c Config) dialTimeout() time.Duration {
	if c.DialTimeout <= 0 {
		return defaultDialTimeout
	}
	return c.DialTimeout
}

// hostPort is the address to dial: host:port.
func (c Config) hostPort() string {
	return net.JoinHostPort(c.Address, strconv.Itoa(c.port()))
}

// name is how messages refer to the host: the address, with the port when
// it is not 22.
func (c Config) name() string {
	if c.port() == defaultPort {
		return c.Address
	}
	return c.hostPort()
}

// Key identifies a connection: user@host:port, followed by " via " and the
// jump host's key when there is one.
func (c Config) Key() string {
	k := c.user() + "@" + c.hostPort()
	if c.Jump != nil {
		k += " via " + c.Jump.Key()
	}
	return k
}

func (c Config) knownHostsPath() (string, error) {
	if c.KnownHostsPath != "" {
		return c.KnownHostsPath, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".ssh", "known_hosts"), nil
}
