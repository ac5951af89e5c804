package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/layout"
)

// ContextName is the context `kforge up --local` adds to the user's
// kubeconfig.
const ContextName = "kforge"

// UpOptions are the inputs of `kforge up --local`.
type UpOptions struct {
	InitOptions
	// Kubeconfig is the user's kubeconfig that gets the kforge context;
	// "" means $KUBECONFIG's first file or ~/.kube/config.
	Kubeconfig string
	// ConfigFile, when set, is a cluster file with this machine as its
	// one host (registries, add-ons, extra flags); "" means the defaults.
	ConfigFile string
}

// Up builds a single-node cluster on this machine: init with local
// defaults and a schedulable control-plane node, then a "kforge" context
// in the user's kubeconfig. On a healthy cluster it changes nothing.
func Up(ctx context.Context, o UpOptions) error {
	c, err := LoadConfig(o.ConfigFile, o.Overrides)
	if err != nil {
		return err
	}
	if len(c.Hosts) != 1 || !c.Hosts[0].Local {
		return fmt.Errorf("%s: kforge up --local builds one node on this machine, so the file lists one host, with local: true and role control-plane; build clusters of several hosts with kforge init -f %s", o.ConfigFile, o.ConfigFile)
	}
	if o.Bundle == "" {
		if b := CachedBundle(c.KubernetesVersion); b != "" {
			o.Out.Infof("  using the bundle %s", b)
			o.Bundle = b
			// make artifacts signed it with the cache's own key, which
			// only this cache's owner can read.
			if pub := CacheSigningKey() + ".pub"; fileExists(pub) {
				o.Trust.TrustedKeys = append(o.Trust.TrustedKeys, pub)
			}
		}
	}
	node, _ := c.ControlPlane()
	d, err := initControlPlane(ctx, o.InitOptions, c, node, true)
	if err != nil {
		return err
	}
	defer d.Host.Close()
	if o.DryRun || o.Phase != "" {
		return nil
	}
	admin, err := d.Host.ReadFile(ctx, layout.AdminConf)
	if err != nil {
		return err
	}
	kc := UserKubeconfig(o.Kubeconfig)
	if err := kc.Merge(admin, ContextName); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", kc.Path, err)
	}
	o.Out.Total("kforge up finished")
	o.Out.Infof("\nkubectl now uses the %q context in %s%s:\n  kubectl get nodes\n  kubectl get pods -A\nThe admin kubeconfig is %s/admin.conf. Remove everything with: kforge reset", ContextName, kc.Path, kc.ownerNote(), layout.KubernetesDir)
	return nil
}

// cacheDir is kforge's cache: $KFORGE_CACHE, else ~/.cache/kforge.
func cacheDir() string {
	dir := os.Getenv("KFORGE_CACHE")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(cache, "kforge")
	}
	return dir
}

// CacheSigningKey is the private key `make artifacts` signs its bundles
// with (made on first use, 0600); its public half is beside it, .pub.
func CacheSigningKey() string { return filepath.Join(cacheDir(), "signing", "bundle_ed25519") }

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// CachedBundle is the newest bundle `make artifacts` left in kforge's cache
// for a Kubernetes version, or "".
func CachedBundle(version string) string {
	dir := cacheDir()
	if dir == "" {
		return ""
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "bundles", version, "kforge-bundle-*.tar*"))
	newest, newestTime := "", int64(0)
	for _, m := range matches {
		if strings.HasSuffix(m, bundle.SignatureExtension) {
			continue
		}
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() && fi.ModTime().UnixNano() > newestTime {
			newest, newestTime = m, fi.ModTime().UnixNano()
		}
	}
	return newest
}
