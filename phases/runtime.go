package phases

import (
	"context"

	"kforge.dev/kforge/templates"
)

// runtimeConfig writes containerd's config.toml for this host: the pause
// image as sandbox image, the cgroup driver the kubelet uses, and
// restrict_oom_score_adj when root lacks CAP_SYS_RESOURCE.
func runtimeConfig(ctx context.Context, d *Data) error {
	imgs, err := d.Images()
	if err != nil {
		return err
	}
	files, err := templates.RenderContainerd(templates.Containerd{
		SandboxImage:        imgs.Pause,
		SystemdCgroup:       d.Facts.CgroupDriver() == templates.CgroupDriverSystemd,
		RestrictOOMScoreAdj: !d.Facts.CapSysResource,
		CNIBinDir:           d.CNIBinDir,
	})
	if err != nil {
		return err
	}
	return writeFiles(ctx, d, files)
}

// writeFiles writes rendered files through the host.
func writeFiles(ctx context.Context, d *Data, files []templates.File) error {
	for _, f := range files {
		if err := d.Host.WriteFile(ctx, f.Path, f.Data, f.Mode); err != nil {
			return err
		}
	}
	return nil
}
