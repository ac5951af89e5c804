package certs

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"

	"gopkg.in/yaml.v3"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// encryptionKeyName names the key in the EncryptionConfiguration, so that a
// rotation can add a second one before it.
const encryptionKeyName = "key1"

// encryptionConfig is the part of the API server's EncryptionConfiguration
// (apiserver.config.k8s.io/v1) that kforge reads back.
type encryptionConfig struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Resources  []struct {
		Resources []string `yaml:"resources"`
		Providers []struct {
			Secretbox *struct {
				Keys []struct {
					Name   string `yaml:"name"`
					Secret string `yaml:"secret"`
				} `yaml:"keys"`
			} `yaml:"secretbox"`
		} `yaml:"providers"`
	} `yaml:"resources"`
}

// EncryptionConfig renders an EncryptionConfiguration that encrypts
// Secrets with secretbox (XSalsa20 and Poly1305) under key, a 32-byte
// key, and still reads Secrets stored before encryption was on.
func EncryptionConfig(key []byte) ([]byte, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("encryption key is %d bytes, want 32", len(key))
	}
	return []byte(`# Encryption of Secrets at rest, written by kforge. The key stays with the
# PKI; certificate renewal does not touch it. Keep a copy with your backups:
# without it, the Secrets in an etcd snapshot cannot be read.
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - secretbox:
      keys:
      - name: ` + encryptionKeyName + `
        secret: ` + base64.StdEncoding.EncodeToString(key) + `
  - identity: {}
`), nil
}

// checkEncryptionConfig accepts a config whose first provider for Secrets
// is secretbox with a 32-byte key.
func checkEncryptionConfig(data []byte) error {
	var c encryptionConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		return err
	}
	if c.Kind != "EncryptionConfiguration" || len(c.Resources) == 0 || len(c.Resources[0].Providers) == 0 {
		return errors.New("not an EncryptionConfiguration with providers")
	}
	sb := c.Resources[0].Providers[0].Secretbox
	if sb == nil || len(sb.Keys) == 0 {
		return errors.New("its first provider is not secretbox with a key")
	}
	key, err := base64.StdEncoding.DecodeString(sb.Keys[0].Secret)
	if err != nil || len(key) != 32 {
		return fmt.Errorf("key %q is not 32 bytes of base64", sb.Keys[0].Name)
	}
	return nil
}

// EnsureEncryptionConfig writes layout.EncryptionConfig with a new random
// key unless a valid one is there: a re-run keeps the key, since Secrets
// already written need it. It tells whether it created the file.
func EnsureEncryptionConfig(ctx context.Context, h host.Host) (bool, error) {
	old, err := h.ReadFile(ctx, layout.EncryptionConfig)
	switch {
	case err == nil:
		if cerr := checkEncryptionConfig(old); cerr != nil {
			return false, fmt.Errorf("%s on %s: %v; move it away to have kforge write a new key (Secrets it encrypted are then unreadable)", layout.EncryptionConfig, h.Name(), cerr)
		}
		return false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return false, err
	}
	data, err := EncryptionConfig(key)
	if err != nil {
		return false, err
	}
	return true, h.WriteFile(ctx, layout.EncryptionConfig, data, layout.SecretMode)
}
