package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/phases"
	"kforge.dev/kforge/reporter"
)

// TokenCreateOptions are the inputs of `kforge token create`.
type TokenCreateOptions struct {
	Connect ConnectOptions
	// ConfigFile makes the token on the cluster file's control plane, over
	// SSH; empty means this machine.
	ConfigFile string
	// TTL is how long the token lasts; at most MaxTokenTTL.
	TTL time.Duration
	// PrintJoinCommand prints the whole join command, not only the token.
	PrintJoinCommand bool
	// Out receives the token or the command; Log the expiry.
	Out io.Writer
	Log *reporter.Reporter
}

// MaxTokenTTL bounds a token's life: tokens expire.
const MaxTokenTTL = 7 * 24 * time.Hour

// TokenCreate mints a bootstrap token on the control plane and prints it,
// or the join command that uses it (as kubeadm token create
// --print-join-command does).
func TokenCreate(ctx context.Context, o TokenCreateOptions) error {
	if o.TTL <= 0 || o.TTL > MaxTokenTTL {
		return fmt.Errorf("--ttl %s: give a duration up to %s (tokens always expire)", o.TTL, MaxTokenTTL)
	}
	h, closeAll, err := controlPlaneHost(ctx, o.ConfigFile, &o.Connect)
	if err != nil {
		return err
	}
	defer closeAll()
	c, err := LoadConfigOrDefault(o.ConfigFile)
	if err != nil {
		return err
	}
	node, _ := c.ControlPlane()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	d, err := phases.New(ctx, phases.Config{Command: "token create", Cluster: c, Node: node, Host: h, Out: o.Log, KforgeBinary: self})
	if err != nil {
		return err
	}
	token, exp, err := d.CreateToken(ctx, o.TTL)
	if err != nil {
		return err
	}
	line := token
	if o.PrintJoinCommand {
		ca, err := h.ReadFile(ctx, layout.CACert)
		if err != nil {
			return fmt.Errorf("cluster CA on %s: %w", h.Name(), err)
		}
		if line, err = phases.JoinCommand(d.Endpoint, token, ca); err != nil {
			return err
		}
	}
	fmt.Fprintln(o.Out, line)
	o.Log.Infof("the token expires at %s, in %s", exp.Format(time.RFC3339), time.Until(exp).Round(time.Minute))
	return nil
}
