package phases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"kforge.dev/kforge/artifacts"
	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
)

// bundleSource is where a run's bundle comes from: a bundle file on the
// machine kforge runs on (fileSource), or, for a worker that init -f or
// join --ssh joins, its control plane's artifact server (serverSource).
type bundleSource interface {
	// manifest returns the bundle's manifest, its signature checked.
	manifest(ctx context.Context) (bundle.Manifest, error)
	// stage returns a directory on the machine kforge runs on that holds,
	// under the bundle's entry paths and images/, what the node installs.
	stage(ctx context.Context) (string, bundle.Manifest, error)
	// keep stores, on a control plane, the signed manifest that its
	// artifact server gives its workers.
	keep(ctx context.Context) error
}

// bundleSource returns the run's bundle source, nil when it has none.
func (d *Data) bundleSource() bundleSource {
	switch {
	case d.Cluster.Artifacts.Bundle != "":
		return fileSource{d}
	case d.ArtifactsFrom != "":
		return serverSource{d}
	}
	return nil
}

// bundleName names the run's bundle in messages.
func (d *Data) bundleName() string {
	if d.Cluster.Artifacts.Bundle == "" && d.ArtifactsFrom != "" {
		return "of the control plane's artifact server " + d.ArtifactsFrom
	}
	return d.Cluster.Artifacts.Bundle
}

type fileSource struct{ d *Data }

// keep writes the bundle's manifest and signature (when it has one) to
// a control plane.
func (s fileSource) keep(ctx context.Context) error {
	if !s.d.controlPlane() {
		return nil
	}
	raw, sig, err := bundle.RawManifest(s.d.Cluster.Artifacts.Bundle)
	if err != nil {
		return err
	}
	if err := s.d.Host.WriteFile(ctx, layout.BundleManifest, raw, layout.PublicMode); err != nil {
		return err
	}
	if sig == nil {
		return s.d.Host.Remove(ctx, layout.BundleSignature)
	}
	return s.d.Host.WriteFile(ctx, layout.BundleSignature, sig, layout.PublicMode)
}

func (s fileSource) manifest(context.Context) (bundle.Manifest, error) { return s.d.inspectBundle() }
func (s fileSource) stage(ctx context.Context) (string, bundle.Manifest, error) {
	return s.d.stageBundle(ctx)
}

// FetchParallel is how many files a worker fetches from its control plane
// at once.
const FetchParallel = 4

type serverSource struct{ d *Data }

// keep has nothing to do: only workers fetch.
func (serverSource) keep(context.Context) error { return nil }

// client is the artifact server's client: it trusts the cluster CA that
// discovery pinned and presents the join's token.
func (s serverSource) client() (*artifacts.Client, error) {
	r := s.d.Results.Discovered
	if r == nil || s.d.Discovery == nil {
		return nil, errors.New("the artifact server is reached only after discovery, which pins the cluster CA")
	}
	return artifacts.NewClient(s.d.ArtifactsFrom, r.CACert, s.d.Discovery.Token.String())
}

// manifest fetches the bundle's manifest and signature from the control
// plane and checks the signature against the cluster's trusted keys, once
// per run.
func (s serverSource) manifest(ctx context.Context) (bundle.Manifest, error) {
	d := s.d
	if m := d.Results.FetchedManifest; m != nil {
		return *m, nil
	}
	c, err := s.client()
	if err != nil {
		return bundle.Manifest{}, err
	}
	raw, err := c.Get(ctx, artifacts.ManifestPath, 16<<20)
	if err != nil {
		return bundle.Manifest{}, fmt.Errorf("the bundle's manifest: %w", err)
	}
	sig, err := c.Get(ctx, artifacts.SignaturePath, 1<<20)
	if err != nil {
		return bundle.Manifest{}, fmt.Errorf("the bundle's signature: %w", err)
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return m, fmt.Errorf("the manifest %s: %w", d.bundleName(), err)
	}
	keys, err := bundle.ParseTrustedKeys(d.Cluster.Artifacts.TrustedKeys)
	if err != nil {
		return m, err
	}
	signer, err := bundle.VerifyManifest("the bundle "+d.bundleName(), raw, sig, keys)
	switch {
	case err == nil:
		d.Out.Logf("bundle %s: signed by %s", d.bundleName(), signer)
	case d.AllowUnsignedBundle:
		d.Out.Infof("  ! --unsafe-allow-unsigned-bundle: installing a bundle whose origin is not checked: %v", err)
	default:
		return m, err
	}
	d.Results.FetchedManifest = &m
	return m, nil
}

// stage fetches the node's binaries and image archives from the control
// plane into a staging directory keyed by the manifest, each checked
// against the signed manifest before it is kept (binaries by size and
// sha256, images by their config digest); files a run fetched before are
// checked again and kept.
func (s serverSource) stage(ctx context.Context) (string, bundle.Manifest, error) {
	d := s.d
	m, err := s.manifest(ctx)
	if err != nil {
		return "", m, err
	}
	_, dir, err := d.stagingDirFor(m, "fetched-", "fetched 1 "+d.Node.Role)
	if err != nil {
		return "", m, err
	}
	if d.Results.StagedDir == dir {
		return dir, m, nil
	}
	c, err := s.client()
	if err != nil {
		return "", m, err
	}
	var received atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(FetchParallel)
	for _, i := range d.binariesToInstall(m) {
		g.Go(func() error {
			dst := filepath.Join(dir, filepath.FromSlash(i.e.Path))
			if fileSHA256(dst) == i.e.SHA256 {
				return nil
			}
			n, err := c.Fetch(gctx, artifacts.EntryPath(i.e.Path), dst, 0o755, i.e.Size, i.e.SHA256)
			received.Add(n)
			if err != nil {
				return fmt.Errorf("fetch %s: %w", i.e.Path, err)
			}
			return nil
		})
	}
	for _, img := range d.nodeImages(m) {
		g.Go(func() error {
			file := images.FileName(img.Name)
			dst := filepath.Join(dir, splitDir, file)
			if id, err := images.ArchiveImageID(dst, img.Name); err == nil && id == img.ID {
				return nil
			}
			n, err := c.Fetch(gctx, artifacts.ImagePath(file), dst, 0o600, 0, "")
			received.Add(n)
			if err != nil {
				return fmt.Errorf("fetch image %s: %w", img.Name, err)
			}
			id, err := images.ArchiveImageID(dst, img.Name)
			if err == nil && id != img.ID {
				err = fmt.Errorf("its config digest is %s, the signed manifest says %s", id, img.ID)
			}
			if err != nil {
				os.Remove(dst)
				return fmt.Errorf("image %s from %s: %w", img.Name, c.Base(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", m, fmt.Errorf("nothing was installed: %w", err)
	}
	d.Out.Infof("fetched %s from %s (%d bytes)", reporter.MiB(received.Load()), c.Base(), received.Load())
	d.Out.Logf("fetched into %s", dir)
	d.Results.StagedDir = dir
	return dir, m, nil
}

// fileSHA256 is a local file's sha256, empty when it cannot be read.
func fileSHA256(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// servedFiles are the files a control plane's artifact server offers its
// workers, read from the manifest the bundle phase stored
// (layout.BundleManifest): kforge itself, the manifest and its signature,
// the worker's binaries where the control plane installed them, and the
// worker's image archives.
func servedFiles(raw []byte) (map[string]artifacts.File, error) {
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", layout.BundleManifest, err)
	}
	files := map[string]artifacts.File{
		artifacts.KforgePath:    {Path: layout.KforgeBinary},
		artifacts.ManifestPath:  {Path: layout.BundleManifest},
		artifacts.SignaturePath: {Path: layout.BundleSignature},
	}
	for _, e := range m.Binaries(false) {
		files[artifacts.EntryPath(e.Path)] = artifacts.File{Path: bundle.InstallPath(e), Size: e.Size}
	}
	for _, img := range m.NodeImages(false) {
		file := images.FileName(img.Name)
		files[artifacts.ImagePath(file)] = artifacts.File{Path: filepath.Join(layout.ImagesDir, file)}
	}
	return files, nil
}

// ArtifactFiles are the files a control plane's artifact server offers, from
// the manifest the bundle phase stored there (servedFiles), without the
// runtime's binaries when the control plane does not have them (`runtime:
// host`, whose workers do not fetch them either) and without the image
// archives it does not keep (HAProxy's in a cluster of one control plane,
// whose workers do not fetch it either).
func ArtifactFiles(raw []byte) (map[string]artifacts.File, error) {
	files, err := servedFiles(raw)
	if err != nil {
		return nil, err
	}
	for p, f := range files {
		_, err := os.Stat(f.Path)
		if err != nil && (slices.Contains(runtimeBinaries, filepath.Base(f.Path)) || artifacts.IsImagePath(p)) {
			delete(files, p)
		}
	}
	return files, nil
}
