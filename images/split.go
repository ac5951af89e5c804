package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Split writes each named image of a docker-save archive into an archive
// of its own in dir (docker-save format, named after the image), so that
// images can be imported in parallel and one at a time. It returns the
// archives' paths by image name.
func Split(ctx context.Context, archive, dir string, names []string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tag, err := name.NewTag(n)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", n, err)
		}
		img, err := tarball.ImageFromPath(archive, &tag)
		if err != nil {
			return nil, fmt.Errorf("image %s in %s: %w", n, archive, err)
		}
		p := filepath.Join(dir, FileName(n))
		if err := WriteArchive(ctx, p, map[name.Reference]v1.Image{tag: img}); err != nil {
			return nil, err
		}
		out[n] = p
	}
	return out, nil
}

// FileName is a file name for an image reference.
func FileName(ref string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref) + ".tar"
}

// ArchiveImageID returns the config digest (the image ID, as `ctr images
// ls` and a bundle's manifest give it) of the image ref in a docker-save
// archive: the sha256 of the config file the archive holds. The layers are
// named by the config's diff IDs, which containerd checks as it unpacks
// them, so a matching ID vouches for the whole image.
func ArchiveImageID(archive, ref string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		return "", fmt.Errorf("image %s in %s: %w", ref, archive, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", fmt.Errorf("image %s in %s: config: %w", ref, archive, err)
	}
	return id.String(), nil
}

// ArchiveLayers returns the layer files of the first image of a docker-save
// archive, base layer first; nil when the archive cannot be read.
func ArchiveLayers(archive string) []string {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(archive) })
	if err != nil || len(m) == 0 {
		return nil
	}
	return m[0].Layers
}
