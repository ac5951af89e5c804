package phases

import (
	"context"
	"fmt"
	"path"

	"kforge.dev/kforge/host"
)

// controlPlaneManifest returns a phase function that writes one static pod
// manifest (etcd.yaml, kube-apiserver.yaml, ...) into
// /etc/kubernetes/manifests, where the kubelet picks it up.
func controlPlaneManifest(file string) func(context.Context, *Data) error {
	return func(ctx context.Context, d *Data) error {
		files, err := renderControlPlane(d)
		if err != nil {
			return err
		}
		for _, f := range files {
			if path.Base(f.Path) == file {
				changed, err := host.WriteChanged(ctx, d.Host, f)
				if changed {
					if d.Results.ChangedManifests == nil {
						d.Results.ChangedManifests = map[string]bool{}
					}
					d.Results.ChangedManifests[file] = true
				}
				return err
			}
		}
		return fmt.Errorf("no rendered manifest %s", file)
	}
}
