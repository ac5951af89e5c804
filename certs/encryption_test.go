package certs

import (
	"bytes"
	"context"
	"strings"
	"testing"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"sigs.k8s.io/yaml"

	"kforge.dev/kforge/layout"
)

// The file decodes strictly as the API server's EncryptionConfiguration,
// encrypts Secrets with secretbox first, and is 0600; a re-run keeps the
// key; a damaged file is refused, not overwritten.
func TestEnsureEncryptionConfig(t *testing.T) {
	ctx := context.Background()
	h := newMemHost()
	created, err := EnsureEncryptionConfig(ctx, h)
	if err != nil || !created {
		t.Fatalf("first run: created %v, %v", created, err)
	}
	f := h.files[layout.EncryptionConfig]
	if f.mode != layout.SecretMode {
		t.Errorf("%s mode %o, want 0600", layout.EncryptionConfig, f.mode)
	}
	var c apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(f.data, &c); err != nil {
		t.Fatalf("does not decode strictly as an EncryptionConfiguration: %v\n%s", err, f.data)
	}
	if len(c.Resources) != 1 || c.Resources[0].Resources[0] != "secrets" {
		t.Fatalf("resources %+v, want secrets", c.Resources)
	}
	p := c.Resources[0].Providers
	if len(p) != 2 || p[0].Secretbox == nil || len(p[0].Secretbox.Keys) != 1 || p[1].Identity == nil {
		t.Fatalf("providers %+v, want secretbox then identity", p)
	}

	created, err = EnsureEncryptionConfig(ctx, h)
	if err != nil || created {
		t.Fatalf("re-run: created %v, %v", created, err)
	}
	if !bytes.Equal(h.files[layout.EncryptionConfig].data, f.data) {
		t.Error("a re-run changed the key")
	}

	h.files[layout.EncryptionConfig] = memFile{data: []byte("kind: EncryptionConfiguration\nresources: []\n"), mode: 0o600}
	_, err = EnsureEncryptionConfig(ctx, h)
	if err == nil || !strings.Contains(err.Error(), layout.EncryptionConfig) || !strings.Contains(err.Error(), "move it away") {
		t.Errorf("damaged file: %v, want an error naming the file and what to do", err)
	}
	if _, err := EncryptionConfig(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}
