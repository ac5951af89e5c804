package phases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
)

// loadBundle installs a kforge bundle's binaries on the host: it verifies
// every checksum first (a corrupt bundle changes nothing on the host), then
// installs the binaries the node needs into /usr/local/bin — the runtime
// (containerd, its shim, ctr, runc, crictl) and the kubelet on every node,
// kubectl and kubeadm on control planes — and the CNI plugins into
// /opt/cni/bin, each skipped when the host's copy is identical. The images
// phase imports the images once containerd runs. Without a bundle it
// checks that the kubelet is installed.
func loadBundle(ctx context.Context, d *Data) error {
	src := d.bundleSource()
	if src == nil {
		if _, err := host.Output(ctx, d.Host, "sh", "-c", "command -v kubelet"); err != nil {
			return errors.New("no kubelet and no bundle: pass --bundle FILE (make artifacts builds one)")
		}
		return nil
	}
	m, err := src.manifest(ctx)
	if err != nil {
		return err
	}
	if err := d.bundleFits(m, true); err != nil {
		return err
	}
	dir, m, err := src.stage(ctx)
	if err != nil {
		return err
	}
	if err := d.installBinaries(ctx, dir, m); err != nil {
		return err
	}
	return src.keep(ctx)
}

// inspectBundle reads the bundle's manifest and checks its signature
// against the cluster's trusted keys, before anything is staged or
// installed: an unsigned bundle, or one signed by another key, is refused
// unless AllowUnsignedBundle, which warns instead.
func (d *Data) inspectBundle() (bundle.Manifest, error) {
	file := d.Cluster.Artifacts.Bundle
	m, err := bundle.Inspect(file)
	if err != nil {
		return m, fmt.Errorf("bundle %s: %w", file, err)
	}
	if d.Results.BundleChecked == file {
		return m, nil
	}
	keys, err := bundle.ParseTrustedKeys(d.Cluster.Artifacts.TrustedKeys)
	if err != nil {
		return m, err
	}
	signer, err := bundle.VerifySignature(file, keys)
	switch {
	case err == nil:
		d.Out.Logf("bundle %s: signed by %s", file, signer)
	case d.AllowUnsignedBundle:
		d.Out.Infof("  ! --unsafe-allow-unsigned-bundle: installing a bundle whose origin is not checked: %v", err)
	default:
		return m, err
	}
	d.Results.BundleChecked = file
	return m, nil
}

// bundleFits refuses a bundle that is not for this host and cluster: its
// architecture and, with withVersion (a join knows the cluster only after
// discovery), its Kubernetes version and a runtime when the cluster file
// has the runtime come from the bundle.
func (d *Data) bundleFits(m bundle.Manifest, withVersion bool) error {
	file := d.bundleName()
	if err := m.CheckArch(d.Facts.Arch); err != nil {
		return fmt.Errorf("bundle %s: %w", file, err)
	}
	if withVersion && m.KubernetesVersion != d.Cluster.KubernetesVersion {
		return fmt.Errorf("bundle %s holds Kubernetes %s and the cluster is %s: pass the bundle of %s (make artifacts KUBERNETES_VERSIONS=%s builds it) or set kubernetesVersion to %s",
			file, m.KubernetesVersion, d.Cluster.KubernetesVersion, d.Cluster.KubernetesVersion, d.Cluster.KubernetesVersion, m.KubernetesVersion)
	}
	if withVersion && d.Runtime().FromBundle && !m.HasRuntime() {
		return fmt.Errorf("bundle %s carries no containerd and runc: make one that does (make artifacts), or set `runtime: host` in the cluster file to use the host's containerd", file)
	}
	return nil
}

// hostFits refuses, before anything is written, a host that the run's
// bundle and runtime cannot serve. A bundle for another architecture or
// (withVersion) Kubernetes version is an error (bundleFits): the bundle
// phase could not go on. The runtime is a preflight problem
// (ContainerRuntime, which --ignore-preflight-errors may waive): the
// host's own containerd under `runtime: host` when the version does not
// support it, and, with the bundle's runtime but no bundle, a host without
// it. Init's and up's preflight run it with the version; a join runs it
// without in preflight and with it once discovery adopted the cluster.
func (d *Data) hostFits(ctx context.Context, add func(name, format string, a ...any), withVersion bool) error {
	if file := d.Cluster.Artifacts.Bundle; file != "" {
		// A join learns the keys the cluster trusts with its settings, at
		// discovery: its preflight reads only the manifest.
		m, err := bundle.Inspect(file)
		if err != nil {
			return fmt.Errorf("bundle %s: %w", file, err)
		}
		if withVersion {
			m, err = d.inspectBundle()
		}
		if err != nil {
			return err
		}
		if err := d.bundleFits(m, withVersion); err != nil {
			return err
		}
	}
	if !withVersion {
		return nil
	}
	rt := d.Runtime()
	if rt.FromBundle {
		// The bundle's containerd serves the default socket; another one
		// there (an OS package's, Docker's) would be shadowed and broken.
		if other, err := d.foreignContainerd(ctx); err != nil {
			return err
		} else if other != "" {
			add("ContainerRuntime", "a containerd that is not the bundle's serves %s: %s. Set `runtime: host` in the cluster file to use it, or stop and remove it so that kforge installs its own", layout.ContainerdSocket, other)
		}
	}
	switch {
	case !rt.FromBundle:
		if _, err := rt.check(ctx, d); err != nil {
			add("ContainerRuntime", "%v", err)
		}
	case d.bundleSource() == nil:
		// Nothing in this run installs it: the host must have it (a
		// read-only probe, which a dry run lets through).
		if _, err := host.Probe(ctx, d.Host, "test", "-x", rt.Containerd); err != nil {
			add("ContainerRuntime", "no bundle and no %s: pass --bundle FILE (make artifacts builds one), or set `runtime: host` in the cluster file to use the host's containerd", rt.Containerd)
		}
	}
	return nil
}

// controlPlane tells whether the run's host is a control-plane node.
func (d *Data) controlPlane() bool { return d.Node.Role == config.RoleControlPlane }

// runtimeBinaries are the bundle's entries that the host's own runtime
// replaces under `runtime: host`.
var runtimeBinaries = []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc"}

// installBinaries installs the bundle's binaries into /usr/local/bin and
// its CNI plugins into /opt/cni/bin. When the stamp says these very
// binaries were installed and every file still has its size, nothing is
// read or copied; otherwise each is uploaded, skipped when identical.
func (d *Data) installBinaries(ctx context.Context, dir string, m bundle.Manifest) error {
	all := d.binariesToInstall(m)
	stamp := &strings.Builder{}
	for _, i := range all {
		fmt.Fprintf(stamp, "%s  %s\n", i.e.SHA256, i.dst)
	}
	old, err := d.Host.ReadFile(ctx, layout.BinariesStamp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if string(old) == stamp.String() {
		intact := true
		for _, i := range all {
			fi, err := d.Host.Stat(ctx, i.dst)
			if err != nil || fi.Size() != i.e.Size {
				intact = false
				break
			}
		}
		if intact {
			return nil
		}
	}
	var dsts []string
	for _, i := range all {
		dsts = append(dsts, i.dst)
	}
	if err := d.noteInstalled(ctx, dsts); err != nil {
		return err
	}
	for _, i := range all {
		if err := d.Host.Upload(ctx, filepath.Join(dir, i.e.Path), i.dst, layout.ExecMode); err != nil {
			return fmt.Errorf("install %s: %w", i.dst, err)
		}
	}
	return d.Host.WriteFile(ctx, layout.BinariesStamp, []byte(stamp.String()), layout.PublicMode)
}

// install is one of the bundle's binaries and where a node installs it.
type install struct {
	e   bundle.Entry
	dst string
}

// binariesToInstall are the bundle's binaries this node installs: a
// worker's or a control plane's (bundle.Manifest.Binaries), without the
// runtime's under `runtime: host`.
func (d *Data) binariesToInstall(m bundle.Manifest) []install {
	var all []install
	fromBundle := d.Runtime().FromBundle
	for _, e := range m.Binaries(d.controlPlane()) {
		if !fromBundle && slices.Contains(runtimeBinaries, path.Base(e.Path)) && !strings.HasPrefix(e.Path, bundle.CNIDir) {
			continue
		}
		all = append(all, install{e, bundle.InstallPath(e)})
	}
	return all
}

// noteInstalled adds paths to the host's list of installed files
// (layout.Installed) before they are written.
func (d *Data) noteInstalled(ctx context.Context, paths []string) error {
	have, err := d.installedFiles(ctx)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if !slices.Contains(have, p) {
			have = append(have, p)
		}
	}
	return d.Host.WriteFile(ctx, layout.Installed, []byte(strings.Join(have, "\n")+"\n"), layout.PublicMode)
}

// installedFiles reads the host's list of installed files and the paths
// of the binaries stamp (all an earlier kforge recorded); only paths under
// /usr/local/bin and /opt/cni/bin count.
func (d *Data) installedFiles(ctx context.Context) ([]string, error) {
	var out []string
	for _, f := range []string{layout.Installed, layout.BinariesStamp} {
		data, err := d.Host.ReadFile(ctx, f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, p := range strings.Fields(string(data)) {
			if (path.Dir(p) == layout.BinDir || path.Dir(p) == layout.CNIBinDir) && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// stageBundle verifies the bundle and unpacks it into a staging directory
// on the machine kforge runs on, keyed by the bundle's manifest; a second
// run with the same bundle reuses it without reading the bundle again.
func (d *Data) stageBundle(ctx context.Context) (string, bundle.Manifest, error) {
	file := d.Cluster.Artifacts.Bundle
	m, err := d.inspectBundle()
	if err != nil {
		return "", m, err
	}
	// The staging layout's version: one archive per image under images/.
	root, dir, err := d.stagingDirFor(m, "", "staging 2")
	if err != nil {
		return "", m, err
	}
	if d.Results.StagedDir == dir {
		return dir, m, nil
	}
	stamp := filepath.Join(dir, ".verified")
	if _, err := os.Stat(stamp); err == nil {
		// Staged before: what it holds must still match the signed
		// manifest, or it is staged again.
		err := verifyStaged(dir, m)
		if err == nil {
			d.Results.StagedDir = dir
			return dir, m, nil
		}
		d.Out.Infof("  ! staged bundle %s no longer matches its manifest (%v): staging it again", dir, err)
	}
	tmp := dir + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return "", m, err
	}
	_, err = bundle.Walk(ctx, file, func(e bundle.Entry, r io.Reader) error {
		p := filepath.Join(tmp, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(e.Mode)&layout.ExecMode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		os.RemoveAll(tmp)
		return "", m, fmt.Errorf("bundle %s failed verification, nothing was installed: %w", file, err)
	}
	var names []string
	for _, img := range m.Images {
		names = append(names, img.Name)
	}
	if _, err := images.Split(ctx, filepath.Join(tmp, bundle.ImagesName), filepath.Join(tmp, splitDir), names); err != nil {
		os.RemoveAll(tmp)
		return "", m, fmt.Errorf("bundle %s: %w", file, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".verified"), nil, layout.PublicMode); err != nil {
		return "", m, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", m, err
	}
	d.Results.StagedDir = dir
	// Only the newest bundle stays staged.
	if old, err := filepath.Glob(filepath.Join(root, "*")); err == nil {
		for _, o := range old {
			if o != dir && !strings.HasSuffix(o, ".partial") {
				os.RemoveAll(o)
			}
		}
	}
	return dir, m, nil
}

// verifyStaged checks every staged binary, which kforge installs into
// /usr/local/bin as root, against its size and sha256 in the manifest.
// The images are imported from archives split out of images.tar when it
// was staged; the staging root, 0700, guards them.
func verifyStaged(dir string, m bundle.Manifest) error {
	for _, e := range m.Entries {
		if e.Path == bundle.ImagesName {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != e.Size || got != e.SHA256 {
			return fmt.Errorf("%s: size %d sha256 %s, the manifest says %d %s", e.Path, n, got, e.Size, e.SHA256)
		}
	}
	return nil
}

// splitDir holds one archive per image in a staging directory.
const splitDir = "images"

// ImportParallel is how many images are imported into containerd at once.
const ImportParallel = 3

// loadImages imports the bundle's images the node runs into containerd
// (importImages); without a bundle there is nothing to import.
func loadImages(ctx context.Context, d *Data) error {
	src := d.bundleSource()
	if src == nil {
		return nil
	}
	dir, m, err := src.stage(ctx)
	if err != nil {
		return err
	}
	return d.importImages(ctx, dir, m)
}

// importImages imports into containerd the bundle's images that the node
// runs (a worker leaves out etcd and the control plane's): the missing
// ones, or all of them when the bundle's image archive differs from the
// one imported last (a stamp on the host records its sha256 and the
// node's role). Images are uploaded one archive each (skipped when the
// host has it) and imported ImportParallel at a time, with a progress bar
// on a terminal.
func (d *Data) importImages(ctx context.Context, dir string, m bundle.Manifest) error {
	e, ok := m.Entry(bundle.ImagesName)
	if !ok {
		return fmt.Errorf("bundle %s has no %s", d.bundleName(), bundle.ImagesName)
	}
	ctr := d.Runtime().Ctr
	have, err := host.Output(ctx, d.Host, ctr, "--address", layout.ContainerdSocket, "-n", layout.ContainerdNamespace, "images", "ls", "-q")
	if err != nil {
		return err
	}
	stamp, err := d.Host.ReadFile(ctx, layout.ImagesStamp)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	want := e.SHA256 + " " + d.Node.Role
	same := strings.TrimSpace(string(stamp)) == want
	present := strings.Fields(have)
	var todo []string
	for _, img := range d.nodeImages(m) {
		if !same || !slices.Contains(present, img.Name) {
			todo = append(todo, img.Name)
		}
	}
	if err := d.keepWorkerImages(ctx, dir, m, todo); err != nil {
		return err
	}
	if len(todo) == 0 {
		return nil
	}
	d.Out.Logf("importing %d images into containerd on %s: %v", len(todo), d.Host.Name(), todo)
	tick := d.Out.Progress("images", len(todo))
	for _, wave := range importWaves(dir, todo) {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(ImportParallel)
		for _, n := range wave {
			g.Go(func() error {
				file := images.FileName(n)
				onHost := path.Join(layout.ImagesDir, file)
				if err := d.Host.Upload(gctx, filepath.Join(dir, splitDir, file), onHost, layout.SecretMode); err != nil {
					return fmt.Errorf("image %s: %w", n, err)
				}
				_, err := d.Host.Run(gctx, host.Cmd{Argv: []string{ctr, "--address", layout.ContainerdSocket, "-n", layout.ContainerdNamespace, "images", "import", onHost}, Sudo: true})
				if err != nil {
					return fmt.Errorf("import image %s: %w", n, err)
				}
				tick()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return d.Host.WriteFile(ctx, layout.ImagesStamp, []byte(want+"\n"), layout.PublicMode)
}

// keepWorkerImages makes sure a control plane holds the archives of the
// images its workers import, which its artifact server gives them: those
// of the images not imported in this run (imported ones are uploaded
// there) are uploaded when missing, as after a reset.
func (d *Data) keepWorkerImages(ctx context.Context, dir string, m bundle.Manifest, todo []string) error {
	if !d.controlPlane() {
		return nil
	}
	worker := *d
	worker.Node.Role = config.RoleWorker
	for _, img := range worker.nodeImages(m) {
		if slices.Contains(todo, img.Name) {
			continue
		}
		onHost := path.Join(layout.ImagesDir, images.FileName(img.Name))
		if ok, err := host.Exists(ctx, d.Host, onHost); err != nil || ok {
			continue
		}
		if err := d.Host.Upload(ctx, filepath.Join(dir, splitDir, images.FileName(img.Name)), onHost, layout.SecretMode); err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
	}
	return nil
}

// importWaves orders the images to import in two waves: first one image of
// each base layer (kube-proxy, kube-router, HAProxy and local-path share
// the Debian layer), then the rest, whose base containerd then has
// unpacked already: parallel imports of one layer would each unpack it.
func importWaves(dir string, todo []string) [][]string {
	var first, rest []string
	seen := map[string]bool{}
	for _, n := range todo {
		layers := images.ArchiveLayers(filepath.Join(dir, splitDir, images.FileName(n)))
		if len(layers) == 0 || !seen[layers[0]] {
			if len(layers) > 0 {
				seen[layers[0]] = true
			}
			first = append(first, n)
			continue
		}
		rest = append(rest, n)
	}
	return [][]string{first, rest}
}

// nodeImages are the bundle's images this node imports: a control
// plane's or a worker's (bundle.Manifest.NodeImages), without the
// node-local load balancer's (HAProxy) in a cluster of one control plane,
// whose nodes reach its API server directly.
func (d *Data) nodeImages(m bundle.Manifest) []bundle.Image {
	var lb string
	if !d.Cluster.HA() {
		if set, err := d.Images(); err == nil {
			lb = set.HAProxy
		}
	}
	var out []bundle.Image
	for _, img := range m.NodeImages(d.controlPlane()) {
		if img.Name != lb {
			out = append(out, img)
		}
	}
	return out
}

// stagingDirFor is the staging directory of a bundle's manifest on the
// machine kforge runs on, named prefix and a hash of the manifest's
// entries and of version (the layout's), under a root that only the user
// kforge runs as may change; it makes the root.
func (d *Data) stagingDirFor(m bundle.Manifest, prefix, version string) (root, dir string, err error) {
	sum := sha256.New()
	fmt.Fprintln(sum, version)
	for _, e := range m.Entries {
		fmt.Fprintf(sum, "%s %s %d\n", e.Path, e.SHA256, e.Mode)
	}
	root = d.StagingDir
	if root == "" {
		root = filepath.Join(os.TempDir(), "kforge-staging")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", "", err
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return "", "", err
	}
	return root, filepath.Join(root, prefix+hex.EncodeToString(sum.Sum(nil))[:16]), nil
}
