// Command e2e-registry is the private registry kforge's end-to-end tests
// pull through: go-containerregistry's registry, served with TLS from a CA
// it makes and with HTTP Basic authentication, on a loopback address or
// on the test machines' bridge address. It pushes one image into itself, the echo test server under
// kforge-e2e/echo:mirror, and logs every request on standard output so
// that a test can see containerd's pulls arrive.
//
//	e2e-registry --addr 127.0.0.1:5443 --dir DIR --echo PATH
//
// Each --push ARCHIVE (a docker save tarball, as the bundle's staging
// directory keeps them) is pushed under --prefix with its path and tag,
// as images.Rehome lays them out: the registry an imageRepository names.
//
// The user and password come from KFORGE_E2E_REGISTRY_USER and
// KFORGE_E2E_REGISTRY_PASSWORD. DIR receives ca.crt. It runs until killed.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"kforge.dev/kforge/images"
)

// Repository and Tag name the image the registry holds.
const (
	Repository = "kforge-e2e/echo"
	Tag        = "mirror"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5443", "loopback address to serve on")
	dir := flag.String("dir", "", "directory that receives ca.crt")
	echo := flag.String("echo", images.DefaultCache().Binary("echo", images.EchoVersion, "echo"), "the echo test server binary to push as "+Repository+":"+Tag)
	prefix := flag.String("prefix", "k8s", "repository prefix the --push archives go under")
	var archives []string
	flag.Func("push", "docker save archive to push under --prefix (repeatable)", func(s string) error {
		archives = append(archives, s)
		return nil
	})
	flag.Parse()
	if err := run(*addr, *dir, *echo, *prefix, archives); err != nil {
		log.Fatalf("e2e-registry: %v", err)
	}
}

func run(addr, dir, echo, prefix string, archives []string) error {
	user, password := os.Getenv("KFORGE_E2E_REGISTRY_USER"), os.Getenv("KFORGE_E2E_REGISTRY_PASSWORD")
	if user == "" || password == "" || dir == "" {
		return fmt.Errorf("set KFORGE_E2E_REGISTRY_USER, KFORGE_E2E_REGISTRY_PASSWORD and --dir")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsLoopback() || ip.IsPrivate()) {
		return fmt.Errorf("--addr %s: serve on loopback or on a private address of a network the tests made (the machines' bridge)", addr)
	}
	cert, caPEM, err := serving(ip)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), caPEM, 0o644); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           logged(basicAuth(user, password, registry.New(registry.Logger(log.New(os.Stderr, "", 0))))),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	c := client{addr: addr, caPEM: caPEM, user: user, password: password}
	img, err := echoImage(echo)
	if err != nil {
		return err
	}
	if err := c.push(addr+"/"+Repository+":"+Tag, img); err != nil {
		return err
	}
	for _, a := range archives {
		if err := c.pushArchive(a, addr+"/"+prefix); err != nil {
			return fmt.Errorf("push %s: %w", a, err)
		}
	}
	fmt.Printf("ready %s/%s:%s\n", addr, Repository, Tag)
	return <-errc
}

// echoImage builds the echo image as images does for the bundle.
func echoImage(echo string) (v1.Image, error) {
	spec := images.EchoSpec(images.DefaultCache())
	spec.Files[0].Src = echo
	// Its own image ID: the kubelet ties each image ID it pulls to the
	// names it pulled it by (KEP-2535), so the bundle's kforge.dev/echo:v1
	// must stay a different image.
	spec.Env = append(spec.Env, "KFORGE_E2E_REGISTRY=1")
	return images.Image(context.Background(), spec, nil)
}

// client pushes through the server's own TLS and authentication.
type client struct {
	addr, user, password string
	caPEM                []byte
}

func (c client) push(ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	auth := authn.FromConfig(authn.AuthConfig{Username: c.user, Password: c.password})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return remote.Write(tag, img, remote.WithTransport(tr), remote.WithAuth(auth), remote.WithContext(ctx))
}

// pushArchive pushes a docker save archive's one image under repository,
// named as images.Rehome names it.
func (c client) pushArchive(path, repository string) error {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return err
	}
	if len(m) != 1 || len(m[0].RepoTags) == 0 {
		return fmt.Errorf("want one tagged image in the archive")
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return err
	}
	// A label of the registry's own makes another image ID than the
	// bundle's copy, as a site's rebuilt images would have (see echoImage).
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	conf := cfg.Config.DeepCopy()
	if conf.Labels == nil {
		conf.Labels = map[string]string{}
	}
	conf.Labels["dev.kforge.e2e-registry"] = "1"
	if img, err = mutate.Config(img, *conf); err != nil {
		return err
	}
	dst := images.Rehome(m[0].RepoTags[0], repository)
	if err := c.push(dst, img); err != nil {
		return err
	}
	fmt.Printf("pushed %s\n", dst)
	return nil
}

// basicAuth refuses requests without the user and password, with the
// challenge registries send, so that clients answer it as they would a
// real private registry's.
func basicAuth(user, password string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="kforge-e2e"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// logged writes "METHOD PATH STATUS" per request, without headers (the
// credentials are in them).
func logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		fmt.Printf("%s %s %d\n", r.Method, r.URL.RequestURI(), sw.status)
	})
}

// serving makes a CA and a certificate for ip signed by it, valid for a
// day.
func serving(ip net.IP) (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kforge-e2e-registry-ca"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip.String()},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{ip}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
