package cluster

import (
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/config"
)

// TrustedKeysEnv names a file of trusted public keys (or one key) that
// counts as one more --trusted-key: a build machine exports it once.
const TrustedKeysEnv = "KFORGE_TRUSTED_KEYS"

// Trust is which bundles a command installs.
type Trust struct {
	// TrustedKeys are --trusted-key's: public keys or files of them.
	TrustedKeys []string
	// AllowUnsigned installs a bundle without a trusted signature, with a
	// warning (--unsafe-allow-unsigned-bundle).
	AllowUnsigned bool
}

// Apply adds the flags' and the environment's keys to the cluster file's
// and stores them all as authorized_keys lines, so that the cluster file
// kforge uploads carries the keys themselves (not paths on this machine)
// to the nodes that join later.
func (t Trust) Apply(c *config.Cluster) error {
	entries := append(append([]string(nil), c.Artifacts.TrustedKeys...), t.TrustedKeys...)
	if env := os.Getenv(TrustedKeysEnv); env != "" {
		entries = append(entries, env)
	}
	keys, err := bundle.ParseTrustedKeys(entries)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var lines []string
	for _, k := range keys {
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
		if !seen[line] {
			seen[line] = true
			lines = append(lines, line)
		}
	}
	c.Artifacts.TrustedKeys = lines
	return nil
}
