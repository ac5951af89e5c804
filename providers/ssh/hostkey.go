package ssh

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// UnknownHostKeyError is a host whose key is not in known_hosts, refused
// because AcceptNewHostKeys is off.
type UnknownHostKeyError struct {
	Host        string // as known_hosts writes it: name or [name]:port
	KeyType     string
	Fingerprint string // SHA256:...
	KnownHosts  string
}

func (e *UnknownHostKeyError) Error() string {
	return fmt.Sprintf("host %s is not in %s; it presents the %s key %s. "+
		"If that fingerprint is right, re-run with --accept-new-host-keys to trust it and add it to %s",
		e.Host, e.KnownHosts, e.KeyType, e.Fingerprint, e.KnownHosts)
}

// HostKeyChangedError is a host presenting a key other than the one
// known_hosts records for it. It is never accepted automatically.
type HostKeyChangedError struct {
	Host            string
	KeyType         string
	Fingerprint     string
	KnownHosts      string
	Line            int
	WantKeyType     string
	WantFingerprint string
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("HOST KEY CHANGED for %s: it presents the %s key %s, but %s line %d records the %s key %s. "+
		"Someone may be intercepting the connection, or the host was reinstalled. "+
		"If the change is expected, delete line %d of %s (ssh-keygen -R '%s' -f %s) and connect again",
		e.Host, e.KeyType, e.Fingerprint, e.KnownHosts, e.Line, e.WantKeyType, e.WantFingerprint,
		e.Line, e.KnownHosts, e.Host, e.KnownHosts)
}

// hostKeys checks host keys against one known_hosts file.
type hostKeys struct {
	path   string
	accept bool
	mu     sync.Mutex // serialises appends from one Dial's hosts (jump and target)
}

// callback returns a knownhosts callback for the file as it is now; a
// missing file knows no hosts.
func (k *hostKeys) callback() (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	return cb, nil
}

// algorithms returns the host key algorithms to negotiate with hostport:
// those of the keys known_hosts has for it, so a host known by its ECDSA key
// is not asked for its Ed25519 key and then mistaken for a changed host. Nil
// means any.
func (k *hostKeys) algorithms(hostport string) []string {
	cb, err := k.callback()
	if err != nil {
		return nil
	}
	probe, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	var ke *knownhosts.KeyError
	if !errors.As(cb(hostport, &net.TCPAddr{IP: net.IPv4zero}, probe), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, w := range ke.Want {
		t := w.Key.Type()
		if seen[t] {
			continue
		}
		seen[t] = true
		if t == ssh.KeyAlgoRSA {
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
		algos = append(algos, t)
	}
	return algos
}

// check is the ssh.HostKeyCallback.
func (k *hostKeys) check(hostport string, remote net.Addr, key ssh.PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	cb, err := k.callback()
	if err != nil {
		return err
	}
	err = cb(hostport, remote, key)
	var ke *knownhosts.KeyError
	if err == nil || !errors.As(err, &ke) {
		return err
	}
	name := knownhosts.Normalize(hostport)
	if len(ke.Want) > 0 {
		want := ke.Want[0]
		for _, w := range ke.Want {
			if w.Key.Type() == key.Type() {
				want = w
				break
			}
		}
		return &HostKeyChangedError{
			Host: name, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key),
			KnownHosts: want.Filename, Line: want.Line,
			WantKeyType: want.Key.Type(), WantFingerprint: ssh.FingerprintSHA256(want.Key),
		}
	}
	if !k.accept {
		return &UnknownHostKeyError{Host: name, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), KnownHosts: k.path}
	}
	return k.add(name, key)
}

// add appends a line for host to known_hosts, creating the file 0600 and
// its directory 0700 when missing.
func (k *hostKeys) add(host string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("adding host key: %w", err)
	}
	line := knownhosts.Line([]string{host}, key) + "\n"
	if old, err := os.ReadFile(k.path); err == nil && len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("adding host key: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("adding host key to %s: %w", k.path, err)
	}
	return f.Close()
}
