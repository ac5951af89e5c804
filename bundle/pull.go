package bundle

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"kforge.dev/kforge/images"
)

// pull fetches the linux/amd64 image of each ref (from o.Registry when
// set) and writes them all, under their upstream names, to archive.
func pull(ctx context.Context, o DownloadOptions, refs []string, archive string) error {
	ctx, cancel := context.WithTimeout(ctx, o.PullTimeout)
	defer cancel()
	tr := o.Client.Transport
	if tr == nil {
		tr = transport()
	}
	out := map[name.Reference]v1.Image{}
	for _, r := range refs {
		upstream, err := name.ParseReference(r)
		if err != nil {
			return err
		}
		src := upstream
		if o.Registry != "" {
			if src, err = name.ParseReference(o.Registry + "/" + upstream.Context().RepositoryStr() + ":" + upstream.Identifier()); err != nil {
				return err
			}
		}
		img, err := remote.Image(src,
			remote.WithContext(ctx),
			remote.WithTransport(tr),
			remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
		if err != nil {
			return fmt.Errorf("pulling %s: %w", src, err)
		}
		out[upstream] = img
	}
	if err := images.WriteArchive(ctx, archive, out); err != nil {
		return fmt.Errorf("pulling images: %w", err)
	}
	return nil
}
