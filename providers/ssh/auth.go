package ssh

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// auth is what a Config offers to log in.
type auth struct {
	methods []ssh.AuthMethod
	offered []string // for error messages: "key ~/.ssh/id_ed25519", "agent", "password"
	agent   net.Conn // closed once the handshake is over
}

func (a *auth) close() {
	if a.agent != nil {
		_ = a.agent.Close()
	}
}

// authFor loads keys, connects to the agent and collects the methods c
// allows, in the order OpenSSH tries them: public keys (agent, then files),
// then password.
func authFor(c Config) (*auth, error) {
	a := &auth{}
	var signers []ssh.Signer

	sock := c.AgentSocket
	if sock == "" && !c.NoAgent {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			if c.AgentSocket != "" {
				return nil, fmt.Errorf("ssh-agent at %s: %w: is the agent running?", sock, err)
			}
			// A stale $SSH_AUTH_SOCK is common; other methods may still work.
		} else {
			a.agent = conn
			agentSigners, err := agent.NewClient(conn).Signers()
			if err != nil {
				a.close()
				return nil, fmt.Errorf("ssh-agent at %s: listing keys: %w", sock, err)
			}
			signers = append(signers, agentSigners...)
			a.offered = append(a.offered, fmt.Sprintf("%d agent key(s)", len(agentSigners)))
		}
	}

	paths, explicit := c.KeyPaths, true
	if len(paths) == 0 && sock == "" && c.Password == "" {
		paths, explicit = defaultKeyPaths(), false
	}
	for _, p := range paths {
		s, err := loadKey(p, c.Passphrase)
		if err != nil {
			if !explicit {
				continue // a default key that cannot be used is skipped, as ssh does
			}
			a.close()
			return nil, err
		}
		signers = append(signers, s)
		a.offered = append(a.offered, "key "+p)
	}
	if len(signers) > 0 {
		a.methods = append(a.methods, ssh.PublicKeys(signers...))
	}

	if c.Password != "" {
		pw := c.Password
		a.methods = append(a.methods,
			ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
		a.offered = append(a.offered, "password")
	}
	if len(a.methods) == 0 {
		a.close()
		return nil, errors.New("no way to log in: give a private key, a password, or run ssh-agent with a key loaded")
	}
	return a, nil
}

func defaultKeyPaths() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	var paths []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(home, ".ssh", n)
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	return paths
}

// loadKey reads a private key file, asking passphrase for encrypted ones.
func loadKey(path string, passphrase func(string) ([]byte, error)) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == nil {
			return nil, fmt.Errorf("private key %s is encrypted: give its passphrase", path)
		}
		pw, perr := passphrase(path)
		if perr != nil {
			return nil, fmt.Errorf("passphrase for %s: %w", path, perr)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(pem, pw)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("private key %s: wrong passphrase", path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return s, nil
}
