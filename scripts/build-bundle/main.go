// Command build-bundle is the last step of `make artifacts`: it builds the
// cluster's images from the binaries scripts/build-artifacts.sh put in the
// cache, and packs them with the node binaries into a bundle in the cache.
// Images and bundle are keyed by the content of their inputs, so a run that
// finds them made only hashes its inputs. The last line it prints is the
// bundle's path.
//
// Usage: go run ./scripts/build-bundle [-cache DIR] [-kubernetes-version V] [-v]
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/reporter"
)

func main() {
	cache := flag.String("cache", images.DefaultCache().Dir, "directory of local builds ($KFORGE_CACHE)")
	version := flag.String("kubernetes-version", images.Default(), "Kubernetes version")
	verbose := flag.Bool("v", false, "log details to stderr")
	signKey := flag.String("sign-key", "", "sign the bundle with this SSH private key, made (ed25519, 0600, with its .pub) when missing")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var log io.Writer
	if *verbose {
		log = os.Stderr
	}
	r := reporter.New(os.Stdout, log, true)
	path, err := bundle.Create(ctx, bundle.CreateOptions{
		KubernetesVersion: *version,
		FromCache:         *cache,
		Step:              r.Step,
		Log:               r.Log(),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "build-bundle: %v\n", err)
		os.Exit(1)
	}
	st, err := os.Stat(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "build-bundle: %v\n", err)
		os.Exit(1)
	}
	if *signKey != "" {
		signer, err := signingKey(*signKey)
		if err == nil {
			err = bundle.Sign(path, signer)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "build-bundle: sign: %v\n", err)
			os.Exit(1)
		}
	}
	r.Total(fmt.Sprintf("bundle (%.0f MiB)", float64(st.Size())/(1<<20)))
	fmt.Println(path)
}

// signingKey reads an OpenSSH private key, making an ed25519 one (and its
// .pub) when the file is missing.
func signingKey(path string) (ssh.Signer, error) {
	if data, err := os.ReadFile(path); err == nil {
		return ssh.ParsePrivateKey(data)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kforge bundles built on this machine")
	if err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}
