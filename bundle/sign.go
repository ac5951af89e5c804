package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"kforge.dev/kforge/config"
)

// A bundle is signed with an SSH signature (the format of `ssh-keygen -Y
// sign`, PROTOCOL.sshsig) over its manifest.json, in a file beside the
// bundle: <bundle>.sig. The manifest holds the sha256 of every other entry,
// so the signature covers the whole bundle, and checking it costs only the
// manifest's read. docs/security.md says why SSH signatures.
const (
	// SignatureNamespace keeps a bundle signature from being valid for
	// anything else the same key signs (git commits, files).
	SignatureNamespace = "kforge-bundle@kforge.dev"
	// SignatureExtension is added to the bundle's name.
	SignatureExtension = ".sig"
)

// SignaturePath is where a bundle's signature lives.
func SignaturePath(bundlePath string) string { return bundlePath + SignatureExtension }

// ErrUnsigned is wrapped when a bundle has no signature.
var ErrUnsigned = errors.New("unsigned")

// rawManifest returns the bundle's manifest.json as stored, checked
// against its sha256 entry.
func rawManifest(path string) ([]byte, Manifest, error) {
	tr, closer, err := open(path)
	if err != nil {
		return nil, Manifest{}, err
	}
	defer closer()
	return readManifestRaw(path, tr)
}

// Sign signs the bundle's manifest with signer and writes the signature to
// SignaturePath(path), replacing any older one.
func Sign(path string, signer ssh.Signer) error {
	raw, _, err := rawManifest(path)
	if err != nil {
		return err
	}
	sig, err := sshsig.Sign(bytes.NewReader(raw), signer, sshsig.HashSHA512, SignatureNamespace)
	if err != nil {
		return fmt.Errorf("sign bundle %s: %w", path, err)
	}
	out := SignaturePath(path)
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, sshsig.Armor(sig), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// TrustedKeys are the public keys whose signatures kforge accepts.
type TrustedKeys []ssh.PublicKey

// ParseTrustedKeys reads trusted keys: each entry is a public key in
// authorized_keys form ("ssh-ed25519 AAAA... comment") or a file of such
// lines (~ is expanded; blank lines and # comments are skipped).
func ParseTrustedKeys(entries []string) (TrustedKeys, error) {
	var keys TrustedKeys
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(e)); err == nil {
			keys = append(keys, k)
			continue
		}
		p := config.ExpandHome(e)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("trusted key %q is neither a public key (ssh-ed25519 AAAA...) nor a readable file: %v", e, err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("trusted keys %s:%d: not a public key in authorized_keys form: %v", p, i+1, err)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// Fingerprints names the keys as ssh-keygen -l does.
func (t TrustedKeys) Fingerprints() string {
	if len(t) == 0 {
		return "none"
	}
	var f []string
	for _, k := range t {
		f = append(f, ssh.FingerprintSHA256(k))
	}
	return strings.Join(f, ", ")
}

// VerifySignature checks the bundle's signature against the trusted keys
// and returns the fingerprint of the key that made it. An unsigned bundle
// wraps ErrUnsigned; every error names the bundle and the keys.
func VerifySignature(path string, trusted TrustedKeys) (string, error) {
	raw, _, err := rawManifest(path)
	if err != nil {
		return "", err
	}
	armored, err := os.ReadFile(SignaturePath(path))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("bundle %s is %w: no %s beside it; sign it with `kforge bundle sign %s --key KEY`, or pass --unsafe-allow-unsigned-bundle to install it anyway",
			path, ErrUnsigned, SignaturePath(path), path)
	}
	if err != nil {
		return "", fmt.Errorf("bundle %s: signature: %w", path, err)
	}
	return VerifyManifest("bundle "+path, raw, armored, trusted)
}

// RawManifest returns the bundle's manifest.json as stored (checked
// against its sha256 entry) and its signature, nil when it has none: what
// a control plane serves its workers (kforge's artifact server), which
// check them with VerifyManifest.
func RawManifest(path string) (raw, signature []byte, err error) {
	raw, _, err = rawManifest(path)
	if err != nil {
		return nil, nil, err
	}
	signature, err = os.ReadFile(SignaturePath(path))
	if errors.Is(err, os.ErrNotExist) {
		return raw, nil, nil
	}
	return raw, signature, err
}

// VerifyManifest checks an armored SSH signature over a manifest's bytes
// against the trusted keys and returns the fingerprint of the key that
// made it; what names the manifest's origin in errors.
func VerifyManifest(what string, raw, armored []byte, trusted TrustedKeys) (string, error) {
	if len(armored) == 0 {
		return "", fmt.Errorf("%s is %w: its manifest has no signature; sign the bundle with `kforge bundle sign BUNDLE --key KEY`, or pass --unsafe-allow-unsigned-bundle to install it anyway", what, ErrUnsigned)
	}
	sig, err := sshsig.Unarmor(armored)
	if err != nil {
		return "", fmt.Errorf("%s: signature: %w", what, err)
	}
	signer := ssh.FingerprintSHA256(sig.PublicKey)
	if len(trusted) == 0 {
		return "", fmt.Errorf("%s is signed by %s, but no key is trusted: pass --trusted-key with that public key (or a file of them), or list it under artifacts.trustedKeys in the cluster file", what, signer)
	}
	for _, k := range trusted {
		if bytes.Equal(k.Marshal(), sig.PublicKey.Marshal()) {
			if err := sshsig.Verify(bytes.NewReader(raw), sig, k, sig.HashAlgorithm, SignatureNamespace); err != nil {
				return "", fmt.Errorf("%s: the signature by %s does not match its manifest (the bundle was changed after it was signed): %w", what, signer, err)
			}
			return signer, nil
		}
	}
	return "", fmt.Errorf("%s is signed by %s, which is not a trusted key (trusted: %s)", what, signer, trusted.Fingerprints())
}
