package images

import (
	"os"
	"path/filepath"
)

// Cache is a directory laid out as scripts/build-artifacts.sh fills it:
//
//	bin/<component>/<version>/<binary>   binaries built from source
//	base/<key>/rootfs.tar                Debian base layers (see Base)
//	images/<version>/<key>/images.tar    image archives built from the binaries
//	bundles/<version>/                   bundles made from all of the above
//
// Components are named as in that script: kubernetes, etcd, coredns, pause,
// kube-router, cni-plugins (and echo, the test web server).
type Cache struct {
	Dir string
}

// DefaultCache is $KFORGE_CACHE, else ~/.cache/kforge, as in
// scripts/build-artifacts.sh.
func DefaultCache() Cache {
	if d := os.Getenv("KFORGE_CACHE"); d != "" {
		return Cache{Dir: d}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return Cache{Dir: filepath.Join(home, ".cache", "kforge")}
}

// Binary is the path of a built binary.
func (c Cache) Binary(component, version, name string) string {
	return filepath.Join(c.Dir, "bin", component, version, name)
}

// Path joins elements under the cache directory.
func (c Cache) Path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}
