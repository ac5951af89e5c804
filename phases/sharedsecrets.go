package phases

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// sharedSecrets copies the secrets every control plane holds alike (the
// cluster, front-proxy and etcd CAs with their keys, the service-account
// key pair and the key that encrypts Secrets at rest) from a running
// control plane to this one, over the connections kforge holds to both:
// they never pass through the cluster. Keys are 0600. The certs phase
// then issues this node's own certificates from them.
func sharedSecrets(ctx context.Context, d *Data) error {
	if d.ControlPlaneSource == nil {
		return fmt.Errorf("no running control plane to copy the cluster's CAs and keys from: kforge init -f joins control planes (or kforge join --control-plane)")
	}
	var files []host.File
	for _, p := range layout.SharedControlPlaneFiles {
		b, err := d.ControlPlaneSource.ReadFile(ctx, p)
		if err != nil {
			return fmt.Errorf("read %s on %s: %w", p, d.ControlPlaneSource.Name(), err)
		}
		files = append(files, host.File{Path: p, Data: b, Mode: sharedMode(p)})
	}
	changed, err := host.WriteChanged(ctx, d.Host, files...)
	if err != nil {
		return err
	}
	d.Out.Logf("shared secrets from %s on %s: changed %v", d.ControlPlaneSource.Name(), d.Host.Name(), changed)
	return nil
}

func sharedMode(p string) fs.FileMode {
	if strings.HasSuffix(p, ".crt") || strings.HasSuffix(p, ".pub") {
		return layout.PublicMode
	}
	return layout.SecretMode
}
