package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/upgrade"
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
	have, err := localAPIServerVersion()
	if err != nil {
		return err
	}
	if have != "" && o.Overrides.KubernetesVersion == "" && o.ConfigFile == "" {
		// Without --kubernetes-version, up keeps the version the cluster
		// on this machine runs (as minikube start does).
		c.KubernetesVersion = have
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
	if err := upgradeLocal(ctx, o, have, c.KubernetesVersion); err != nil {
		return err
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

// upgradeLocal upgrades the cluster that runs on this machine in place
// when it runs an older version than up asks for (minikube's start
// --kubernetes-version), as kforge upgrade apply does; it refuses a
// newer one.
func upgradeLocal(ctx context.Context, o UpOptions, have, want string) error {
	if have == "" || have == want {
		return nil
	}
	if err := upgrade.CheckPath(have, want); err != nil {
		return fmt.Errorf("kforge up --local --kubernetes-version %s: the cluster on this machine runs %s: %w", want, have, err)
	}
	if o.Bundle == "" {
		return fmt.Errorf("kforge up --local --kubernetes-version %s: the cluster on this machine runs %s and no bundle of %s is cached: make artifacts KUBERNETES_VERSIONS=%s builds one, or pass --bundle", want, have, want, want)
	}
	o.Out.Infof("The cluster on this machine runs %s: upgrading it in place to %s", have, want)
	return UpgradeApply(ctx, UpgradeOptions{
		Connect: o.Connect, ConfigFile: o.ConfigFile, Bundle: o.Bundle, Trust: o.Trust,
		KubernetesVersion: want, Parallel: 1, Timeout: DefaultUpgradeTimeout,
		SnapshotDir: filepath.Join(cacheDir(), "snapshots"), Schedulable: true, Out: o.Out,
	})
}

// localAPIServerVersion is the version of the API server whose static pod
// runs on this machine, or "" without one.
func localAPIServerVersion() (string, error) {
	b, err := os.ReadFile(filepath.Join(layout.ManifestsDir, "kube-apiserver.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if _, img, ok := strings.Cut(line, "image:"); ok {
			if i := strings.LastIndex(img, ":"); i >= 0 {
				return strings.Trim(strings.TrimSpace(img[i+1:]), `"'`), nil
			}
		}
	}
	return "", nil
}
