package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/expiration"
	"kforge.dev/kforge/providers/ssh"
)

// DefaultWarnWithin is how close to expiry a certificate makes
// check-expiration fail.
const DefaultWarnWithin = 30 * 24 * time.Hour

// CertsCheckOptions are the inputs of `kforge certs check-expiration`.
type CertsCheckOptions struct {
	Connect ConnectOptions
	// ConfigFile checks every host of a cluster file, over SSH.
	ConfigFile string
	// JSON writes one JSON document instead of tables.
	JSON bool
	// WarnWithin fails the check when a certificate expires sooner.
	WarnWithin time.Duration
	Parallel   int
	Out        io.Writer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// HostCerts are one host's certificates, or why they could not be read.
type HostCerts struct {
	Host  string            `json:"host"`
	Certs []expiration.Cert `json:"certificates"`
	Error string            `json:"error,omitempty"`
}

// CertsCheck lists the certificates of this machine, or of every host of
// a cluster file, with their expiry, and fails naming those that expire
// within WarnWithin (or could not be read).
func CertsCheck(ctx context.Context, o CertsCheckOptions) error {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	hosts, err := fileHosts(o.ConfigFile)
	if err != nil {
		return err
	}
	pool := ssh.NewPool()
	defer pool.Close()
	o.Connect.Pool = pool
	report := make([]HostCerts, len(hosts))
	forEachHost(ctx, hosts, o.Parallel, func(ctx context.Context, n config.Host) HostResult {
		i := indexOf(hosts, n)
		report[i].Host = n.Address
		if n.Local {
			report[i].Host = "localhost"
		}
		h, err := Connect(ctx, n, o.Connect)
		if err == nil {
			defer h.Close()
			report[i].Certs, err = expiration.Check(ctx, h, now())
		}
		if err != nil {
			report[i].Error = err.Error()
		}
		return HostResult{}
	})
	var problems []string
	for _, r := range report {
		if r.Error != "" {
			problems = append(problems, r.Host+": "+r.Error)
		}
		for _, c := range expiration.Expiring(r.Certs, o.WarnWithin) {
			problems = append(problems, fmt.Sprintf("%s: %s expires %s (%s)", r.Host, c.Name, c.NotAfter.Format(time.RFC3339), expiration.HumanDuration(c.Residual)))
		}
	}
	if o.JSON {
		if err := writeJSON(o.Out, map[string]any{"hosts": report, "warnWithinSeconds": int64(o.WarnWithin.Seconds())}); err != nil {
			return err
		}
	} else {
		printCerts(o.Out, report)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%d certificate(s) expire within %s or could not be read:\n  %s\nrenew them before they expire", len(problems), o.WarnWithin, strings.Join(problems, "\n  "))
	}
	return nil
}

// fileHosts are the cluster file's hosts, or this machine's without one.
func fileHosts(file string) ([]config.Host, error) {
	c, err := LoadConfigOrDefault(file)
	if err != nil {
		return nil, err
	}
	return c.Hosts, nil
}

// LoadConfigOrDefault loads the cluster file, or gives the one-node
// cluster of this machine without one.
func LoadConfigOrDefault(file string) (*config.Cluster, error) {
	if file == "" {
		return config.Default(), nil
	}
	return LoadConfig(file, Overrides{})
}

func indexOf(hosts []config.Host, n config.Host) int {
	for i, h := range hosts {
		if h.Address == n.Address && h.Local == n.Local && h.Name == n.Name {
			return i
		}
	}
	return 0
}

// printCerts writes kubeadm's table, one per host.
func printCerts(out io.Writer, report []HostCerts) {
	for i, r := range report {
		if len(report) > 1 || r.Host != "localhost" {
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "HOST %s\n", r.Host)
		}
		if r.Error != "" {
			fmt.Fprintf(out, "error: %s\n", r.Error)
		}
		if len(r.Certs) == 0 {
			continue
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tSIGNED BY\tRENEWED BY")
		for _, c := range r.Certs {
			name := c.Name
			if c.CA {
				name += " (CA)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", name, c.NotAfter.Format("Jan 02, 2006 15:04 MST"), expiration.HumanDuration(c.Residual), c.SignedBy, c.RenewedBy)
		}
		w.Flush()
	}
}

// writeJSON writes v to w as one indented JSON document, for -o json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
