package phases

import (
	"context"
	"fmt"
	"path"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
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

func renderControlPlane(d *Data) ([]host.File, error) {
	imgs, err := d.Images()
	if err != nil {
		return nil, err
	}
	c := d.Cluster
	return templates.RenderControlPlane(templates.ControlPlane{
		Images: templates.ControlPlaneImages{
			Etcd:              imgs.Etcd,
			APIServer:         imgs.APIServer,
			ControllerManager: imgs.ControllerManager,
			Scheduler:         imgs.Scheduler,
		},
		EtcdVersion:      imgs.Versions.Etcd,
		NodeName:         d.NodeName,
		AdvertiseAddress: d.AdvertiseAddress,
		BindPort:         layout.APIServerPort,
		ServiceSubnet:    c.Networking.ServiceSubnet,
		PodSubnet:        c.Networking.PodSubnet,
		ClusterName:      c.Name,
		DNSDomain:        c.Networking.DNSDomain,
		CACertDirs:       d.CACertDirs,
	})
}
