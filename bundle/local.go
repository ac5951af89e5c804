package bundle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"kforge.dev/kforge/images"
)

// CNIPlugins are the CNI plugins a bundle carries: what containerd and
// kube-router's pod network use.
var CNIPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// nodeBinaries are the Kubernetes binaries of a bundle, from the
// "kubernetes" component.
func nodeBinaries(withoutKubeadm bool) []string {
	if withoutKubeadm {
		return []string{"kubelet", "kubectl"}
	}
	return []string{"kubelet", "kubectl", "kubeadm"}
}

// fromCache collects the binaries of a bundle from local builds and builds
// (or finds cached) the image archive. The echo test image is added when
// its binary has been built.
func fromCache(ctx context.Context, o CreateOptions, set images.Set) ([]file, string, error) {
	c := images.Cache{Dir: o.FromCache}
	v := set.Versions
	var files []file
	for _, b := range nodeBinaries(o.WithoutKubeadm) {
		files = append(files, file{path: BinDir + b, src: c.Binary("kubernetes", v.Kubernetes, b), mode: 0o755})
	}
	for _, p := range CNIPlugins {
		files = append(files, file{path: CNIDir + p, src: c.Binary("cni-plugins", v.CNIPlugins, p), mode: 0o755})
	}
	// The container runtime, unless the options name one of their own.
	if o.Containerd == "" {
		for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr"} {
			files = append(files, file{path: BinDir + b, src: c.Binary("containerd", v.Containerd, b), mode: 0o755})
		}
	}
	if o.Runc == "" {
		files = append(files, file{path: BinDir + "runc", src: c.Binary("runc", v.Runc, "runc"), mode: 0o755})
	}
	files = append(files, file{path: BinDir + "crictl", src: c.Binary("crictl", v.Crictl, "crictl"), mode: 0o755})
	specs := images.Specs(set, c)
	if echo := images.EchoSpec(c); exists(echo.Files[0].Src) {
		specs = append(specs, echo)
	}
	var missing []string
	for _, f := range files {
		if !exists(f.src) {
			missing = append(missing, f.src)
		}
	}
	for _, s := range specs {
		for _, f := range s.Files {
			if !exists(f.Src) {
				missing = append(missing, f.Src)
			}
		}
	}
	if len(missing) > 0 {
		return nil, "", fmt.Errorf("local builds in %s lack %d binaries, first %s; build them with `make artifacts` (scripts/build-artifacts.sh)",
			o.FromCache, len(missing), missing[0])
	}
	base := o.Base
	if len(base.Debootstrap) == 0 {
		base = images.DefaultBase()
	}
	var archive string
	err := o.step(fmt.Sprintf("images: %d from local builds", len(specs)), func() error {
		var err error
		archive, err = images.Archive(ctx, specs, images.BuildOptions{
			Cache: c, Base: base, Name: v.Kubernetes, Log: o.Log,
		})
		return err
	})
	return files, archive, err
}

// runtimeFiles are containerd's and runc's entries, if asked for.
func runtimeFiles(containerd, runc string) ([]file, error) {
	var files []file
	if containerd != "" {
		dir, bin := containerd, filepath.Join(containerd, "containerd")
		if st, err := os.Stat(containerd); err != nil {
			return nil, fmt.Errorf("--containerd: %w", err)
		} else if !st.IsDir() {
			dir, bin = filepath.Dir(containerd), containerd
		}
		files = append(files,
			file{path: BinDir + "containerd", src: bin, mode: 0o755},
			file{path: BinDir + "containerd-shim-runc-v2", src: filepath.Join(dir, "containerd-shim-runc-v2"), mode: 0o755})
		files = append(files, file{path: BinDir + "ctr", src: filepath.Join(dir, "ctr"), mode: 0o755})
	}
	if runc != "" {
		files = append(files, file{path: BinDir + "runc", src: runc, mode: 0o755})
	}
	for _, f := range files {
		if st, err := os.Stat(f.src); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s for the bundle: %s is not a file", f.path, f.src)
		}
	}
	return files, nil
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
