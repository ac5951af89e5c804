// What kforge records on a host about its own runs, so that a run killed
// at any moment is recognised as kforge's own by the next one.
package phases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/layout"
)

// runRecord is written by preflight once its checks pass, before any other
// phase changes the host. kforge reset removes it.
type runRecord struct {
	// Command is init, up or join.
	Command string `json:"command"`
	// Cluster names the cluster: the control plane's endpoint, as the run
	// saw it (for join, the endpoint it was given).
	Cluster string    `json:"cluster"`
	Started time.Time `json:"started"`
}

// clusterID is how the run record names this run's cluster: for a join,
// the pinned CA (or, without a pin, the endpoint as a URL, whichever way it
// was written); otherwise the control plane's endpoint.
func (d *Data) clusterID() string {
	if d.Discovery != nil {
		if len(d.Discovery.CACertHashes) > 0 {
			return d.Discovery.CACertHashes[0]
		}
		if u, err := discovery.EndpointURL(d.Discovery.Endpoint); err == nil {
			return u
		}
		return d.Discovery.Endpoint
	}
	return d.Endpoint
}

// readRunRecord returns the host's run record, or nil when it has none.
func (d *Data) readRunRecord(ctx context.Context) (*runRecord, error) {
	b, err := d.Host.ReadFile(ctx, layout.RunRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r runRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w; remove it with kforge reset", layout.RunRecord, err)
	}
	return &r, nil
}

// recordRun writes the run record unless the host has one for this
// cluster already (a re-run keeps the first one's start).
func (d *Data) recordRun(ctx context.Context, prev *runRecord) error {
	if prev != nil && prev.Cluster == d.clusterID() {
		d.Results.Recorded = true
		return nil
	}
	b, err := json.Marshal(runRecord{Command: d.Command, Cluster: d.clusterID(), Started: d.Now().UTC()})
	if err != nil {
		return err
	}
	if err := d.Host.WriteFile(ctx, layout.RunRecord, append(b, '\n'), layout.PublicMode); err != nil {
		return err
	}
	d.Results.Recorded = true
	return nil
}

// ownRun tells what the run record says of the host's state: ours when a
// kforge run of this cluster began here; a problem when one of another
// cluster did and was not reset.
func (d *Data) ownRun(rec *runRecord) (ours bool, p *problem) {
	switch {
	case rec == nil:
		return false, nil
	case rec.Cluster == d.clusterID():
		return true, nil
	}
	return false, &problem{"Leftovers", fmt.Sprintf("a kforge %s of another cluster (%s) began here on %s and was not reset; run `kforge reset` on this host first",
		rec.Command, rec.Cluster, rec.Started.Format(time.RFC3339))}
}

// joinWrites comes before a join's first change to the host, which
// discovery has verified by then: it records the run and marks the join as
// one to undo if it fails (Results.Wrote).
func (d *Data) joinWrites(ctx context.Context) error {
	if d.Results.Wrote {
		return nil
	}
	rec, err := d.readRunRecord(ctx)
	if err != nil {
		return err
	}
	if err := d.recordRun(ctx, rec); err != nil {
		return err
	}
	d.Results.Wrote = true
	return nil
}

// recorded runs a phase of init that writes to the host once the run
// record is there: preflight writes it, but a run may leave preflight out
// (--skip-phases, `kforge init phase NAME`).
func recorded(run func(context.Context, *Data) error) func(context.Context, *Data) error {
	return func(ctx context.Context, d *Data) error {
		if !d.Results.Recorded {
			rec, err := d.readRunRecord(ctx)
			if err != nil {
				return err
			}
			if _, p := d.ownRun(rec); p != nil {
				return fmt.Errorf("[%s] %s", p.name, p.msg)
			}
			if err := d.recordRun(ctx, rec); err != nil {
				return err
			}
			d.Results.Recorded = true
		}
		return run(ctx, d)
	}
}
