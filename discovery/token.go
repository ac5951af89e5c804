package discovery

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// Token is a bootstrap token, "id.secret": the id names the token (it is
// public: cluster-info carries one signature per id), the secret
// authenticates and signs.
type Token struct {
	ID     string
	Secret string
}

var tokenRE = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// TokenRegexp matches a whole bootstrap token, [a-z0-9]{6}.[a-z0-9]{16},
// with the id and the secret as its submatches: kforge's one definition of
// the form.
func TokenRegexp() *regexp.Regexp { return tokenRE }

// ParseToken checks the form kubeadm gives bootstrap tokens:
// [a-z0-9]{6}.[a-z0-9]{16}.
func ParseToken(s string) (Token, error) {
	m := tokenRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Token{}, fmt.Errorf("--token: %q is not a bootstrap token of the form [a-z0-9]{6}.[a-z0-9]{16}", redact(s))
	}
	return Token{ID: m[1], Secret: m[2]}, nil
}

func (t Token) String() string { return t.ID + "." + t.Secret }

// redact keeps a token's id and hides the rest, for messages.
func redact(s string) string {
	if id, _, ok := strings.Cut(s, "."); ok {
		return id + ".<hidden>"
	}
	if len(s) > 6 {
		return s[:6] + "<hidden>"
	}
	return s
}

// ParseCAHash checks a CA pin, "sha256:" and 64 hex digits, and returns it
// in lower case.
func ParseCAHash(s string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	hexPart, ok := strings.CutPrefix(h, "sha256:")
	if !ok {
		return "", fmt.Errorf("--discovery-token-ca-cert-hash %q: the form is sha256:<64 hex digits> (kforge init prints it)", s)
	}
	if b, err := hex.DecodeString(hexPart); err != nil || len(b) != 32 {
		return "", fmt.Errorf("--discovery-token-ca-cert-hash %q: after sha256: come 64 hex digits, the SHA-256 of the CA's public key", s)
	}
	return h, nil
}
