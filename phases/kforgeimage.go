package phases

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
)

// kforgeImage imports kforge's own image, made from the running kforge
// binary (images.KforgeSpec), into containerd on a control plane: the
// kubelet-serving CSR approver runs from it. A host that has this
// binary's image is left alone; older tags of the image are removed.
func kforgeImage(ctx context.Context, d *Data) error {
	spec, err := d.kforgeImageSpec()
	if err != nil {
		return err
	}
	ctr := []string{d.Runtime().Ctr, "--address", layout.ContainerdSocket, "-n", layout.ContainerdNamespace}
	out, err := host.Output(ctx, d.Host, append(ctr, "images", "ls", "-q")...)
	if err != nil {
		return err
	}
	have := strings.Fields(out)
	if !slices.Contains(have, spec.Ref) {
		if err := d.importKforgeImage(ctx, spec, ctr); err != nil {
			return fmt.Errorf("kforge's image %s: %w", spec.Ref, err)
		}
	}
	for _, ref := range have {
		if strings.HasPrefix(ref, images.KforgeRepository+":") && ref != spec.Ref {
			if _, err := d.Host.Run(ctx, host.Cmd{Argv: append(ctr, "images", "rm", ref), Sudo: true}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Data) importKforgeImage(ctx context.Context, spec images.Spec, ctr []string) error {
	local, cleanup, err := d.kforgeImageArchive(ctx, spec)
	if err != nil {
		return err
	}
	defer cleanup()
	onHost := path.Join(layout.ImagesDir, "kforge.tar")
	if err := d.Host.Upload(ctx, local, onHost, layout.SecretMode); err != nil {
		return err
	}
	defer d.Host.Remove(ctx, onHost)
	d.Out.Logf("importing kforge's image %s into containerd on %s", spec.Ref, d.Host.Name())
	_, err = d.Host.Run(ctx, host.Cmd{Argv: append(ctr, "images", "import", onHost), Sudo: true})
	return err
}

// kforgeImageArchive writes spec's image as a docker-save archive. With a
// staging directory it is kept there, one per kforge binary, so that the
// next run (and the next host) only uploads it; otherwise it goes to a
// temporary directory that cleanup removes.
func (d *Data) kforgeImageArchive(ctx context.Context, spec images.Spec) (file string, cleanup func(), err error) {
	cleanup = func() {}
	dir := ""
	if d.StagingDir != "" {
		dir = filepath.Join(d.StagingDir, "kforge-image")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, err
		}
	} else {
		if dir, err = os.MkdirTemp("", "kforge-image-"); err != nil {
			return "", nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	tag := spec.Ref[strings.LastIndex(spec.Ref, ":")+1:]
	file = filepath.Join(dir, tag+".tar")
	if _, err := os.Stat(file); err == nil {
		return file, cleanup, nil
	}
	img, err := images.Image(ctx, spec, nil)
	if err == nil {
		var ref name.Reference
		if ref, err = name.ParseReference(spec.Ref); err == nil {
			err = images.WriteArchive(ctx, file, map[name.Reference]v1.Image{ref: img})
		}
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	// Archives of other kforge binaries are not needed again.
	old, _ := filepath.Glob(filepath.Join(dir, "*.tar"))
	for _, o := range old {
		if o != file {
			os.Remove(o)
		}
	}
	return file, cleanup, nil
}

// kforgeImageSpec is the image of the kforge binary this run is.
func (d *Data) kforgeImageSpec() (images.Spec, error) {
	if d.KforgeBinary == "" {
		return images.Spec{}, fmt.Errorf("kforge's own binary is unknown, so its image cannot be made")
	}
	sum, err := images.FileSHA256(d.KforgeBinary)
	if err != nil {
		return images.Spec{}, err
	}
	return images.KforgeSpec(d.KforgeBinary, sum), nil
}
