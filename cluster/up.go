package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

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
}

// Up builds a single-node cluster on this machine: init with local
// defaults and a schedulable control-plane node, then a "kforge" context
// in the user's kubeconfig. On a healthy cluster it changes nothing.
func Up(ctx context.Context, o UpOptions) error {
	c, err := LoadConfig("", o.Overrides)
	if err != nil {
		return err
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
	d, err := initControlPlane(ctx, o.InitOptions, c, true)
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
	path := UserKubeconfig(o.Kubeconfig)
	if err := MergeContext(path, admin, ContextName); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	o.Out.Total("kforge up finished")
	o.Out.Infof("\nkubectl now uses the %q context in %s:\n  kubectl get nodes\n  kubectl get pods -A\nThe admin kubeconfig is %s/admin.conf. Remove everything with: kforge reset", ContextName, path, layout.KubernetesDir)
	return nil
}

// UserKubeconfig is the kubeconfig file kforge edits for the user.
func UserKubeconfig(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)[0]
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".kube", "config")
}

// MergeContext adds the admin kubeconfig's cluster, user and context to the
// kubeconfig at path under name, makes it the current context, and writes
// the file atomically with mode 0600.
func MergeContext(path string, admin []byte, name string) error {
	src, err := clientcmd.Load(admin)
	if err != nil {
		return err
	}
	ctx := src.Contexts[src.CurrentContext]
	if ctx == nil {
		return fmt.Errorf("admin kubeconfig has no current context")
	}
	dst, err := loadOrEmpty(path)
	if err != nil {
		return err
	}
	dst.Clusters[name] = src.Clusters[ctx.Cluster]
	dst.AuthInfos[name] = src.AuthInfos[ctx.AuthInfo]
	dst.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	dst.CurrentContext = name
	return writeKubeconfig(path, dst)
}

// RemoveContext removes the named cluster, user and context from the
// kubeconfig at path; a missing file or context is not an error. It tells
// whether anything was removed.
func RemoveContext(path, name string) (bool, error) {
	dst, err := loadOrEmpty(path)
	if err != nil {
		return false, err
	}
	if dst.Contexts[name] == nil && dst.Clusters[name] == nil && dst.AuthInfos[name] == nil {
		return false, nil
	}
	delete(dst.Contexts, name)
	delete(dst.Clusters, name)
	delete(dst.AuthInfos, name)
	if dst.CurrentContext == name {
		dst.CurrentContext = ""
	}
	return true, writeKubeconfig(path, dst)
}

func loadOrEmpty(path string) (*clientcmdapi.Config, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return clientcmdapi.NewConfig(), nil
	}
	return clientcmd.LoadFromFile(path)
}

func writeKubeconfig(path string, c *clientcmdapi.Config) error {
	data, err := clientcmd.Write(*c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), layout.PrivateDirMode); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kforge-kubeconfig-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(layout.SecretMode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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
