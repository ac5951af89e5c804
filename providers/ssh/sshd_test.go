package ssh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"kforge.dev/kforge/internal/testtier"
)

// The integration tests start real OpenSSH sshd processes on 127.0.0.1 and
// log in as root and as these local users. Every test that calls setup
// creates them and a sudoers file, and removes both when it ends: the names
// belong to these tests, so users left by an interrupted run are reused and
// then removed too.
const (
	userKey  = "kforge-ssh-key"  // key and password login, no sudo
	userSudo = "kforge-ssh-sudo" // sudo with a password
	userNoPw = "kforge-ssh-nopw" // sudo NOPASSWD

	loginPassword = "kforge-login-Pw1"
	sudoPass      = "kforge-sudo-Pw2"
	keyPassphrase = "kforge-key-phrase"

	sudoersFile = "/etc/sudoers.d/kforge-ssh-test"
)

// testEnv is what every test shares: users, keys and a directory sshd's
// AuthorizedKeysFile points into.
type testEnv struct {
	dir        string // world-readable: sshd reads authorized_keys as the user
	key        string // private key authorized for every test user
	encrypted  string // the same key, encrypted with keyPassphrase
	stranger   string // a private key nobody authorized
	signer     ssh.Signer
	privateKey ed25519.PrivateKey
}

var (
	envOnce sync.Once
	envVal  *testEnv
	envErr  error
	envSkip string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if envVal != nil {
		os.RemoveAll(envVal.dir)
	}
	os.Exit(code)
}

// setup returns the shared test environment (keys), creating it on first
// use, and adds the test users and their sudoers rules until t ends. Not
// being root skips the test, unless CI=true, where it fails.
func setup(t *testing.T) *testEnv {
	t.Helper()
	testtier.Integration(t, "sshd, root and test users added to this machine")
	envOnce.Do(func() {
		if os.Geteuid() != 0 {
			envSkip = "the SSH integration tests create users and run sshd, so they must run as root"
			return
		}
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			envErr = fmt.Errorf("no /usr/sbin/sshd (run scripts/install-deps.sh): %w", err)
			return
		}
		envVal, envErr = newTestEnv()
	})
	if envSkip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(envSkip)
		}
		t.Skip(envSkip)
	}
	if envErr != nil {
		t.Fatal(envErr)
	}
	addUsers(t)
	return envVal
}

// addUsers creates the test users, gives them passwords (sshd refuses
// locked accounts) and installs their sudoers rules; all of it is removed
// when t ends.
func addUsers(t *testing.T) {
	t.Helper()
	users := []string{userKey, userSudo, userNoPw}
	// Registered first, so it runs after the test's connections and sshd
	// are gone. -f: a session process may still be exiting.
	t.Cleanup(func() {
		if err := os.Remove(sudoersFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("removing %s: %v", sudoersFile, err)
		}
		for _, u := range users {
			if exec.Command("id", u).Run() != nil {
				continue
			}
			if out, err := exec.Command("userdel", "-r", "-f", u).CombinedOutput(); err != nil {
				t.Errorf("userdel %s: %v: %s", u, err, out)
			}
		}
	})
	for _, u := range users {
		if exec.Command("id", u).Run() == nil {
			continue
		}
		if out, err := exec.Command("useradd", "-m", "-s", "/bin/bash", u).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", u, err, out)
		}
	}
	chpw := exec.Command("chpasswd")
	chpw.Stdin = strings.NewReader(fmt.Sprintf("%s:%s\n%s:%s\n%s:%s\n", userKey, loginPassword, userSudo, sudoPass, userNoPw, loginPassword))
	if out, err := chpw.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v: %s", err, out)
	}
	sudoers := fmt.Sprintf("Defaults:%s !lecture\n%s ALL=(ALL:ALL) ALL\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n", userSudo, userSudo, userNoPw)
	if err := os.WriteFile(sudoersFile, []byte(sudoers), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-cf", sudoersFile).CombinedOutput(); err != nil {
		t.Fatalf("visudo: %v: %s", err, out)
	}
}

func newTestEnv() (*testEnv, error) {
	dir, err := os.MkdirTemp("", "kforge-ssh-test-")
	if err != nil {
		return nil, err
	}
	e := &testEnv{dir: dir}
	fail := func(err error) (*testEnv, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return fail(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fail(err)
	}
	e.privateKey = priv
	if e.signer, err = ssh.NewSignerFromKey(priv); err != nil {
		return fail(err)
	}
	e.key = filepath.Join(dir, "id_ed25519")
	if err := writeKey(e.key, priv, nil); err != nil {
		return fail(err)
	}
	e.encrypted = filepath.Join(dir, "id_encrypted")
	if err := writeKey(e.encrypted, priv, []byte(keyPassphrase)); err != nil {
		return fail(err)
	}
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fail(err)
	}
	e.stranger = filepath.Join(dir, "id_stranger")
	if err := writeKey(e.stranger, other, nil); err != nil {
		return fail(err)
	}
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.Mkdir(ak, 0o755); err != nil {
		return fail(err)
	}
	line := ssh.MarshalAuthorizedKey(e.signer.PublicKey())
	for _, u := range []string{"root", userKey, userSudo, userNoPw} {
		if err := os.WriteFile(filepath.Join(ak, u), line, 0o644); err != nil {
			return fail(err)
		}
	}
	return e, nil
}

func writeKey(path string, key ed25519.PrivateKey, passphrase []byte) error {
	var block *pem.Block
	var err error
	if passphrase == nil {
		block, err = ssh.MarshalPrivateKey(key, "kforge test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, "kforge test", passphrase)
	}
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

// sshd is one running OpenSSH server.
type sshd struct {
	port       int
	hostKey    ssh.PublicKey
	knownHosts string // a known_hosts file that knows this server
	log        *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startSSHD runs sshd on a free port of 127.0.0.1 until the test ends.
// extra lines come first in its configuration, so they override the
// defaults below: sshd keeps the first value it reads for a keyword.
func startSSHD(t *testing.T, e *testEnv, extra ...string) *sshd {
	t.Helper()
	dir := t.TempDir()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := writeKey(hostKeyPath, hostPriv, nil); err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	s := &sshd{hostKey: hostSigner.PublicKey(), log: &syncBuffer{}}

	const attempts = 3 // a port taken between choosing and binding is retried
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		conf := strings.Join(append(append([]string{}, extra...),
			"Port "+strconv.Itoa(s.port),
			"ListenAddress 127.0.0.1",
			"HostKey "+hostKeyPath,
			"PidFile "+filepath.Join(dir, "sshd.pid"),
			"AuthorizedKeysFile "+filepath.Join(e.dir, "authorized_keys", "%u"),
			"StrictModes no",
			"UsePAM no",
			"PermitRootLogin yes",
			"PubkeyAuthentication yes",
			"PasswordAuthentication yes",
			"KbdInteractiveAuthentication no",
			"AllowTcpForwarding yes",
			"X11Forwarding no",
			"MaxAuthTries 10",
			"MaxStartups 100",
			"MaxSessions 100",
			"LogLevel DEBUG1",
			"Subsystem sftp internal-sftp",
			// bash started by sshd sources ~/.bashrc only as a top-level
			// shell; SHLVL=1 makes it a second-level one, so the tests do not
			// depend on (or wait for) this machine's startup files.
			"SetEnv SHLVL=1",
		), "\n") + "\n"
		confPath := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", confPath)
		cmd.Stdout, cmd.Stderr = s.log, s.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			if t.Failed() {
				t.Logf("sshd on port %d:\n%s", s.port, s.log.String())
			}
		})
		if waitListening(s.port, exited) {
			break
		}
		if attempt == attempts {
			t.Fatalf("sshd did not start:\n%s", s.log.String())
		}
	}

	s.knownHosts = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))}, s.hostKey)
	if err := os.WriteFile(s.knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits up to 5 s for port to accept connections.
func waitListening(port int, exited <-chan struct{}) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range 250 {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// config is a Config for user on s, logging in with the shared key.
func (s *sshd) config(e *testEnv, user string) Config {
	return Config{
		Address:        "127.0.0.1",
		Port:           s.port,
		User:           user,
		KeyPaths:       []string{e.key},
		NoAgent:        true,
		KnownHostsPath: s.knownHosts,
		DialTimeout:    5 * time.Second,
	}
}

// count returns how many times sub occurs in the server's log.
func (s *sshd) count(sub string) int { return strings.Count(s.log.String(), sub) }

// proxy forwards TCP connections from a loopback port to an sshd and counts
// them, so a test knows how many connections kforge opened, and can cut
// them all as a network failure would.
type proxy struct {
	port       int
	knownHosts string // knows the sshd's host key under the proxy's port
	sshd       *sshd
	accepted   atomic.Int64

	mu      sync.Mutex
	conns   []net.Conn
	stopped bool
}

// startProxy runs a proxy to s until the test ends.
func startProxy(t *testing.T, s *sshd) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &proxy{port: l.Addr().(*net.TCPAddr).Port, sshd: s}
	px.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(px.port)))}, s.hostKey)
	if err := os.WriteFile(px.knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		px.mu.Lock()
		px.stopped = true
		px.mu.Unlock()
		px.drop()
		wg.Wait()
	})
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			px.accepted.Add(1)
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			px.mu.Lock()
			stopped := px.stopped
			if !stopped {
				px.conns = append(px.conns, c, up)
			}
			px.mu.Unlock()
			if stopped { // accepted while the test was ending
				c.Close()
				up.Close()
				continue
			}
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			wg.Add(2)
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	return px
}

// drop closes every connection through the proxy.
func (px *proxy) drop() {
	px.mu.Lock()
	defer px.mu.Unlock()
	for _, c := range px.conns {
		c.Close()
	}
	px.conns = nil
}

// config is a Config for user on the proxied sshd, through the proxy.
func (px *proxy) config(e *testEnv, user string) Config {
	cfg := px.sshd.config(e, user)
	cfg.Port = px.port
	cfg.KnownHostsPath = px.knownHosts
	return cfg
}

// connectedTo counts this process's established TCP connections to port on
// 127.0.0.1 (from /proc/self/fd and /proc/self/net/tcp).
func connectedTo(t *testing.T, port int) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	sockets := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			sockets[strings.TrimSuffix(inode, "]")] = true
		}
	}
	table, err := os.ReadFile("/proc/self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	remote := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	for _, line := range strings.Split(string(table), "\n")[1:] {
		// sl local_address rem_address st ... uid timeout inode
		f := strings.Fields(line)
		if len(f) >= 10 && f[2] == remote && f[3] == "01" && sockets[f[9]] {
			n++
		}
	}
	return n
}

// eventually polls cond every 20 ms for up to 5 s.
func eventually(cond func() bool) bool {
	for range 250 {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}
