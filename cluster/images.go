package cluster

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/providers/ssh"
	"kforge.dev/kforge/reporter"
)

// ImagesLoadOptions are the inputs of `kforge images load`.
type ImagesLoadOptions struct {
	// Archive is a `docker save` or OCI image archive.
	Archive string
	// ConfigFile loads into every host of a cluster file; without it, into
	// this machine.
	ConfigFile string
	Connect    ConnectOptions
	Parallel   int
	Out        *reporter.Reporter
}

// ImagesLoad imports an image archive into containerd's k8s.io namespace
// on every node, like `kind load image-archive`: the archive is uploaded
// (skipped when the host already has it) and imported with ctr.
func ImagesLoad(ctx context.Context, o ImagesLoadOptions) error {
	if _, err := os.Stat(o.Archive); err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	hosts, err := fileHosts(o.ConfigFile)
	if err != nil {
		return err
	}
	pool := ssh.NewPool()
	defer pool.Close()
	o.Connect.Pool = pool
	dst := path.Join(layout.ImagesDir, "load-"+filepath.Base(o.Archive))
	results := forEachHost(ctx, hosts, o.Parallel, func(ctx context.Context, n config.Host) HostResult {
		h, err := Connect(ctx, n, o.Connect)
		if err != nil {
			return HostResult{Outcome: "failed", Err: err}
		}
		defer h.Close()
		if err := h.Upload(ctx, o.Archive, dst, layout.SecretMode); err != nil {
			return HostResult{Outcome: "failed", Err: err}
		}
		argv := []string{"ctr", "--address", layout.ContainerdSocket, "-n", layout.ContainerdNamespace, "images", "import", "--all-platforms", dst}
		if err := runPrefixed(ctx, h, o.Out, argv, ""); err != nil {
			return HostResult{Outcome: "failed", Err: err}
		}
		if err := h.Remove(ctx, dst); err != nil {
			return HostResult{Outcome: "failed", Err: err}
		}
		return HostResult{Outcome: "loaded"}
	})
	if len(hosts) == 1 && results[0].Err != nil {
		return results[0].Err
	}
	return summarize(o.Out, "Images", results)
}
