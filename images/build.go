package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// archiveFormat changes whenever the way images are built changes, so that
// cached archives of an older kforge are not reused.
const archiveFormat = "kforge images archive 1"

// Image makes the image of spec: the base layer when spec.Debian (base
// must then be the Debian root file system layer), a layer with spec's
// files, and a linux/amd64 config with spec's entrypoint and environment.
// Timestamps are fixed, so equal inputs give equal digests.
func Image(ctx context.Context, spec Spec, base v1.Layer) (v1.Image, error) {
	if _, err := name.ParseReference(spec.Ref, name.StrictValidation); err != nil {
		return nil, fmt.Errorf("image %q: %w", spec.Ref, err)
	}
	files, err := FileLayer(ctx, spec.Files)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Ref, err)
	}
	cfg := v1.Config{
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.env(),
		User:       spec.User,
		WorkingDir: spec.WorkingDir,
	}
	if len(spec.Ports) > 0 {
		cfg.ExposedPorts = map[string]struct{}{}
		for _, p := range spec.Ports {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	var adds []mutate.Addendum
	if spec.Debian {
		if base == nil {
			return nil, fmt.Errorf("image %s needs the Debian base layer", spec.Ref)
		}
		adds = append(adds, mutate.Addendum{Layer: base, History: v1.History{
			Created: v1.Time{Time: epoch}, CreatedBy: "kforge: Debian base (debootstrap)",
		}})
	}
	var dsts []string
	for _, f := range spec.Files {
		dsts = append(dsts, f.Dst)
	}
	adds = append(adds, mutate.Addendum{Layer: files, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "kforge: add " + strings.Join(dsts, " "),
	}})
	return mutate.Append(img, adds...)
}

// BuildOptions say where Archive caches and how it makes the base layer.
type BuildOptions struct {
	Cache Cache
	Base  Base
	// Name groups cached archives, e.g. the Kubernetes version: they are
	// kept in Cache/images/<Name>/<key>/images.tar.
	Name string
	Log  io.Writer
}

// Archive returns an image archive holding the images of specs under their
// names: the docker-save format (manifest.json with RepoTags), which `ctr
// images import` and `docker load` accept. The archive is cached, keyed by
// the content of every input (binaries, base layer, specs), so a second call
// with the same inputs only hashes them; other archives of the same Name are
// removed when a new one is written.
func Archive(ctx context.Context, specs []Spec, o BuildOptions) (string, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	var rootfs string
	for _, s := range specs {
		if s.Debian && rootfs == "" {
			var err error
			if rootfs, err = o.Base.Rootfs(ctx, o.Cache, o.Log); err != nil {
				return "", fmt.Errorf("the Debian base layer: %w", err)
			}
		}
	}
	key, err := archiveKey(specs, rootfs)
	if err != nil {
		return "", err
	}
	group := o.Cache.Path("images", o.Name)
	dir := filepath.Join(group, key)
	out := filepath.Join(dir, "images.tar")
	if _, err := os.Stat(out); err == nil {
		fmt.Fprintf(o.Log, "images: %s is up to date\n", out)
		return out, nil
	}
	var base v1.Layer
	if rootfs != "" {
		if base, err = tarball.LayerFromFile(rootfs, tarball.WithCompressedCaching); err != nil {
			return "", err
		}
	}
	refs := map[name.Reference]v1.Image{}
	for _, s := range specs {
		img, err := Image(ctx, s, base)
		if err != nil {
			return "", err
		}
		ref, err := name.ParseReference(s.Ref)
		if err != nil {
			return "", err
		}
		refs[ref] = img
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(o.Log, "images: writing %d images to %s\n", len(specs), out)
	if err := WriteArchive(ctx, out, refs); err != nil {
		return "", err
	}
	old, _ := os.ReadDir(group)
	for _, e := range old {
		if e.Name() != key {
			os.RemoveAll(filepath.Join(group, e.Name()))
		}
	}
	return out, nil
}

// WriteArchive writes images to path in the docker-save format with their
// names as tags. It writes a temporary file next to path and renames it, so
// path is complete or absent.
func WriteArchive(ctx context.Context, path string, refs map[name.Reference]v1.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".images-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tarball.MultiRefWrite(refs, tmp); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// archiveKey hashes what decides an archive's content: the format, each
// spec with the sha256 of its files instead of their paths, and the base
// root file system.
func archiveKey(specs []Spec, rootfs string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, archiveFormat)
	enc := json.NewEncoder(h)
	for _, s := range specs {
		type hashed struct {
			Spec
			Sums []string
		}
		x := hashed{Spec: s}
		x.Files = nil
		for _, f := range s.Files {
			sum, err := FileSHA256(f.Src)
			if err != nil {
				return "", fmt.Errorf("image %s: %w", s.Ref, err)
			}
			x.Sums = append(x.Sums, fmt.Sprintf("%s %o %s", f.Dst, f.Mode, sum))
		}
		if err := enc.Encode(x); err != nil {
			return "", err
		}
	}
	if rootfs != "" {
		sum, err := FileSHA256(rootfs)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, "base", sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// FileSHA256 returns the hex sha256 of a file's content.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
