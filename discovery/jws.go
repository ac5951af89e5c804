package discovery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The controller manager's bootstrapsigner signs cluster-info's kubeconfig
// with every signing token as a detached JWS (RFC 7515, appendix F): the
// compact serialization with its payload left out, "header..signature",
// HS256 keyed with the token's secret, the token id as "kid".

var errMismatch = errors.New("the signature does not match the token secret")

// VerifyJWS checks a detached JWS over payload with the token: the header
// must say HS256 and, when it names a key, the token's id; the signature
// must be the HMAC-SHA256 of "header.base64url(payload)" keyed with the
// token's secret.
func VerifyJWS(detached string, payload []byte, t Token) error {
	header, sig, ok := strings.Cut(detached, "..")
	if !ok || header == "" || sig == "" || strings.Contains(sig, ".") {
		return errors.New("the signature is not a detached JWS (header..signature)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return fmt.Errorf("the signature's header is not base64url: %w", err)
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("the signature's header is not JSON: %w", err)
	}
	if h.Alg != "HS256" {
		return fmt.Errorf("the signature uses %q, not HS256", h.Alg)
	}
	if h.Kid != "" && h.Kid != t.ID {
		return fmt.Errorf("the signature names key %q, not token id %q", h.Kid, t.ID)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("the signature is not base64url: %w", err)
	}
	if !hmac.Equal(got, mac(header, payload, t.Secret)) {
		return errMismatch
	}
	return nil
}

// SignJWS returns the detached JWS the bootstrapsigner would write for
// payload and the token.
func SignJWS(payload []byte, t Token) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + t.ID + `"}`))
	return header + ".." + base64.RawURLEncoding.EncodeToString(mac(header, payload, t.Secret))
}

func mac(header string, payload []byte, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(header + "." + base64.RawURLEncoding.EncodeToString(payload)))
	return m.Sum(nil)
}
