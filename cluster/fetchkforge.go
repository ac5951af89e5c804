package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"kforge.dev/kforge/artifacts"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
)

// fetchKforge puts kforge on a worker from its control plane's artifact
// server, so that this machine does not send it to every worker.
type fetchKforge struct {
	url, token, self, sum string
	ca                    []byte
	// ProbeSeconds bounds the check that the worker reaches the server.
	probeSeconds int
}

// artifactsCA is where a worker keeps the cluster CA while curl fetches
// kforge; the join itself writes the CA only after discovery.
const artifactsCA = layout.StateDir + "/artifacts-ca.crt"

func newFetchKforge(ctx context.Context, d *phases.Data, srv *artifactServer, self, token string) (fetchKforge, error) {
	sum, err := images.FileSHA256(self)
	if err != nil {
		return fetchKforge{}, fmt.Errorf("kforge's own sha256: %w", err)
	}
	ca, err := d.Host.ReadFile(ctx, layout.CACert)
	if err != nil {
		return fetchKforge{}, fmt.Errorf("%s: the cluster CA: %w", d.Host.Name(), err)
	}
	return fetchKforge{url: srv.url, token: token, self: self, sum: sum, ca: ca, probeSeconds: 5}, nil
}

// onto makes sure h has this kforge at layout.KforgeBinary and can reach
// the artifact server. It returns why not when h cannot reach the server
// (a firewall, another network): the caller then sends kforge and the
// bundle from this machine. A host that reaches it but has no curl gets
// kforge from this machine and the bundle from the server.
func (f fetchKforge) onto(ctx context.Context, h host.Host) string {
	hostport := strings.TrimPrefix(f.url, "https://")
	ip, port, _ := net.SplitHostPort(hostport)
	// bash's /dev/tcp: the check needs nothing the host may lack.
	probe := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", ip, port)
	if _, err := h.Run(ctx, host.Cmd{Argv: []string{"timeout", strconv.Itoa(f.probeSeconds), "bash", "-c", probe}, ReadOnly: true}); err != nil {
		return fmt.Sprintf("cannot reach the control plane's artifact server at %s (TCP port %d)", hostport, artifacts.Port)
	}
	if have, _ := host.Probe(ctx, h, "sh", "-c", `sha256sum "$1" 2>/dev/null | cut -d" " -f1`, "sh", layout.KforgeBinary); have == f.sum {
		return ""
	}
	if _, err := host.Probe(ctx, h, "sh", "-c", "command -v curl"); err != nil {
		if err := h.Upload(ctx, f.self, layout.KforgeBinary, layout.ExecMode); err != nil {
			return fmt.Sprintf("no curl, and uploading kforge failed: %v", err)
		}
		return ""
	}
	if err := h.WriteFile(ctx, artifactsCA, f.ca, layout.PublicMode); err != nil {
		return fmt.Sprintf("write the cluster CA for curl: %v", err)
	}
	// The token reaches curl on standard input (-H @-), never its
	// command line; the file is kept only when its sha256 is this
	// kforge's.
	script := `set -e; dst=$1; tmp=$1.partial; mkdir -p "$(dirname "$dst")"; rm -f "$tmp"
curl -fsS --connect-timeout 5 --max-time 300 --retry 2 --cacert "$2" -H @- -o "$tmp" "$3"
echo "$4  $tmp" | sha256sum -c --status || { rm -f "$tmp"; echo "kforge from $3 does not have the sha256 $4" >&2; exit 1; }
chmod 0755 "$tmp"; mv "$tmp" "$dst"`
	_, err := h.Run(ctx, host.Cmd{
		Argv:  []string{"sh", "-c", script, "sh", layout.KforgeBinary, artifactsCA, f.url + artifacts.KforgePath, f.sum},
		Sudo:  true,
		Stdin: strings.NewReader("Authorization: Bearer " + f.token + "\n"),
	})
	_ = h.Remove(ctx, artifactsCA)
	if err != nil {
		return fmt.Sprintf("fetching kforge with curl failed: %v", err)
	}
	return ""
}
